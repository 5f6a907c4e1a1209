// The operations eccl-perf measures, with nccl-tests' size and bandwidth conventions:
// algbw = size / time; busbw = algbw × factor, where factor is (n−1)/n for all_gather and
// all_to_all, 2(n−1)/n for all_reduce, 1 for sendrecv, pingpong, bandwidth and batch_p2p.
// pingpong's time is half a round trip (OSU's osu_latency convention), bandwidth's one message of
// a window of 64 in flight (osu_bw's), the others' a whole operation.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace eccl::perf {

// One prepared operation at one size: run() performs it once (blocking).
struct PreparedOp {
  std::function<void()> run;
  size_t size = 0;  // the "size" column: bytes, as nccl-tests counts them
  double timeScale = 1.0;  // reported time = measured time per run() × this
};

struct OpKind {
  std::string name;
  double busFactor(int n) const;
  // Allocates buffers for `bytes` and returns the runnable op, or nullptr if the size does not
  // fit this op (e.g. not divisible by the rank count). With `registered`, point-to-point ops
  // register their buffers once and pass the regions (nccl-tests' -R); collectives ignore it.
  std::function<PreparedOp(Communicator&, size_t bytes, bool registered)> prepare;
};

const std::vector<OpKind>& allOps();
const OpKind* findOp(const std::string& name);

}  // namespace eccl::perf
