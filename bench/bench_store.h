// The store server the benchmarks share: started in its own process on first use. Call it in
// the benchmark's own process before forking ranks, so every rank talks to the same server.
#pragma once

#include "apps/common/child_store_server.h"

namespace eccl::bench {

inline ChildStoreServer& benchStore() {
  static ChildStoreServer server;
  return server;
}

}  // namespace eccl::bench
