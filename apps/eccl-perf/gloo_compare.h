// The same measurements through Gloo's TCP transport (Debian's libgloo-dev), for side-by-side
// figures in one run: all_gather (Gloo's ring) and sendrecv (unbound-buffer send/recv).
#pragma once

#include <memory>
#include <string>

namespace eccl::perf {

class GlooPeer {
 public:
  // Connects rank/size through a file store in `dir` (local ranks only).
  GlooPeer(int rank, int size, const std::string& dir);
  ~GlooPeer();
  // Mean microseconds per operation over `iters` after `warmup`, this rank's view.
  double allGatherUs(size_t totalBytes, int iters, int warmup);
  double sendRecvUs(size_t bytes, int iters, int warmup);
  // Half a round trip between ranks 2k and 2k+1, µs.
  double pingPongUs(size_t bytes, int iters, int warmup);
  static bool supports(const std::string& op) { return op == "all_gather" || op == "sendrecv" || op == "pingpong"; }
  // The largest `value` of all ranks (a Gloo all-reduce), for the slowest rank's time.
  double maxOverRanks(double value);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eccl::perf
