// Uses installed headers by their installed path and talks to a store.
#include <eccl/groups/store/tcp_store_client.h>
#include <eccl/groups/store/tcp_store_server.h>

#include <cstdio>

int main() {
  eccl::TcpStoreServer server(eccl::TcpStoreServerOptions{});
  eccl::TcpStoreClient client(server.address());
  client.set("hello", eccl::asBytes("installed"));
  std::string v = eccl::toString(client.get("hello"));
  std::printf("consumer got '%s' from %s\n", v.c_str(), server.address().str().c_str());
  return v == "installed" ? 0 : 1;
}
