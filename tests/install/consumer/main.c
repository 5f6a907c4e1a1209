/* A C program built with `pkg-config --cflags --libs eccl`: the C API's headers by their
 * installed path, a store served and used through it. */
#include <eccl/eplb/capi/eccl_eplb.h>
#include <eccl/groups/capi/eccl.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  ecclStoreServer_t server;
  ecclStore_t store;
  char addr[128], value[16];
  size_t bytes = 0;
  if (ecclStoreServerStart(NULL, 0, &server) != ecclSuccess) return 1;
  if (ecclStoreServerAddress(server, addr, sizeof addr) != ecclSuccess) return 2;
  if (ecclStoreConnect(addr, 10000, &store) != ecclSuccess) return 3;
  if (ecclStoreSet(store, "c", "from C", 6) != ecclSuccess) return 4;
  if (ecclStoreGet(store, "c", value, sizeof value, &bytes, -1) != ecclSuccess || bytes != 6) return 5;
  printf("C consumer got '%.*s' from %s (%s)\n", (int)bytes, value, addr, ecclGetErrorString(ecclSuccess));
  ecclStoreClose(store);
  ecclStoreServerStop(server);
  return memcmp(value, "from C", 6) == 0 ? 0 : 6;
}
