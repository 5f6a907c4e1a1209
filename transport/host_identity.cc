#include "transport/host_identity.h"

#include <unistd.h>

#include <fstream>

#include "base/env.h"

namespace eccl::transport {

std::string localHostId() {
  if (auto id = envString("ECCL_HOST_ID")) return *id;
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return std::string(host) + "/" + boot;
}

}  // namespace eccl::transport
