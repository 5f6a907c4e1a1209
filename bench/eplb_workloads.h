// Synthetic EPLB workloads, seeded and deterministic.
#pragma once

#include <cstdint>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::bench {

struct Workload {
  eplb::Placement current;
  eplb::ExpertLoads loads;
};

// vllm-ascend's policy check: for every layer a random placement of `experts` logical experts
// plus (ranks·slots − experts) redundant replicas (no expert twice on a rank), and per step a
// load of 999·u¹⁰ + 1 for every slot (u uniform in [0,1)). An expert's load in a step is the sum
// over its slots; the steps are kept as episodes.
Workload vllmAscendCheck(int layers, int experts, int ranks, int slots, int steps, uint64_t seed);

// Zipf-skewed loads whose hot set drifts: expert popularity ∝ 1/rank^s over a permutation that
// a few random transpositions change from one episode to the next. `tokens` per episode.
eplb::ExpertLoads zipfDrifting(int layers, int experts, int episodes, double s, double tokens, int driftSwaps,
                               uint64_t seed);

// A random valid placement (each expert at least once, no expert twice on a rank).
eplb::LayerPlacement randomPlacement(int experts, int ranks, int slots, uint64_t seed);

}  // namespace eccl::bench
