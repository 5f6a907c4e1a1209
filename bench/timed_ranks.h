// Runs N forked ranks that start at the same instant (released together through a pipe) and
// measures the wall time from release until the last rank finished its part. Each rank returns
// the steady-clock time its measured part ended; CLOCK_MONOTONIC is shared by all processes.
#pragma once

#include <chrono>
#include <functional>

namespace eccl::bench {

// fn(rank) runs after the release and returns when its measured work is done; it may do
// untimed set-up before `ready()` is called. Returns seconds from release to the last finish.
// Throws if any rank fails.
double runTimedRanks(int n, const std::function<void(int rank, const std::function<void()>& ready)>& fn);

}  // namespace eccl::bench
