// The rendezvous phase of the demo: N local ranks, started in random order, find each other
// through a store embedded in rank 0, print every rank's address, and meet at a barrier.
#pragma once

#include <chrono>

namespace eccl::demo {

struct RendezvousOptions {
  int ranks = 4;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds maxStartDelay{300};
  unsigned seed = 42;
};

// Returns 0 when every rank succeeded; prints a summary line per rank and the elapsed time.
int runRendezvousDemo(const RendezvousOptions& options);

}  // namespace eccl::demo
