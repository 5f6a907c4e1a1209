// "flash": joint replica allotment and placement, after FlashLB, taken further.
//
// Objective: the largest rank risk over the load episodes, mean + z·std (with one aggregate
// window, the max rank load). By default z = 0.5 when the loads carry episodes (see FlashOptions). Per layer it evaluates allotments by packing them (LPT, then swap
// refinement until no swap helps) and keeps the best of:
//   1. min-max-replica on the risk weights;
//   2. threshold allotments: for candidate per-replica caps T just above the lower bound, the
//      fewest replicas meeting T, the rest by min-max-replica;
//   3. a tree search over replica counts of load-sorted expert groups (FlashTree): each group's
//      count is tried around its min-max-replica value (pruned to ±width) with the later groups
//      allotted by min-max-replica as look-ahead;
//   4. an exact enumeration of all allotments when there are few (small layers);
//   5. local improvement (packed and refined): move one replica from one expert to another
//      while that helps.
// Layer cherry-picking: with a current placement, a layer is re-planned only when its risk is
// `replanThreshold` × the mean rank load or more, and the new plan is kept only if it is better.
// New rows are matched to the old ranks (Hungarian) and kept experts keep their slots.
#pragma once

#include "eplb/policy.h"

namespace eccl::eplb {

struct FlashOptions {
  // Risk weight of the std across episodes (FlashLB uses 0.674). Negative = automatic: 0.5 for a
  // layer whose loads carry episodes (so each episode's peak counts, not only their sum), else 0.
  // 0 plans on the aggregate alone (about 20x faster, but blind to loads that take turns).
  double z = -1;
  int maxEpisodes = 8;            // episodes are summed into at most this many windows
  double replanThreshold = 1.02;  // cherry-picking: re-plan layers at or above this imbalance
  int groups = 4;                 // tree search depth
  int width = 8;                  // tree search width (± around the look-ahead value)
  int thresholdCandidates = 12;
  long long exactLimit = 2000;    // enumerate all allotments when there are at most this many
  int refined = 4;                // screened allotments that get the full swap refinement
  int localSearchEvaluations = 24;
};

class FlashPolicy final : public PlacementPolicy {
 public:
  explicit FlashPolicy(FlashOptions o = {}) : opts_(o) {}
  std::string name() const override { return "flash"; }

 protected:
  LayerPlacement planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                           bool& replanned) const override;

 private:
  FlashOptions opts_;
};

}  // namespace eccl::eplb
