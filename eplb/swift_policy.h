// "swift": migration-aware. Starts from the current placement and moves as few replicas as it
// can, at most `maxMoves` per layer; layers whose imbalance is under `imbalanceThreshold` are
// left alone. Two phases:
//   1. re-allotment: replica counts go towards the min-max-replica targets one replica at a time
//      (the hottest expert per replica below its target takes a slot from an expert above its
//      target, on the rank that stays lightest) — 1 move each;
//   2. improvement: the best move that lowers the most loaded rank by at least minGain × the
//      mean rank load: a swap of one of its replicas with one on another rank (2 moves), or a
//      new replica of one of its experts in place of a spare replica elsewhere (1 move).
// A layer is kept unchanged unless the result is better. Without a current placement it plans
// like "default".
#pragma once

#include "eplb/policy.h"

namespace eccl::eplb {

struct SwiftOptions {
  double imbalanceThreshold = 1.01;
  int maxMoves = -1;     // per layer; -1 = N·S/4 (at least 8)
  double minGain = 0.002;  // smallest improvement worth a move, × the mean rank load
};

class SwiftPolicy final : public PlacementPolicy {
 public:
  explicit SwiftPolicy(SwiftOptions o = {}) : opts_(o) {}
  std::string name() const override { return "swift"; }

 protected:
  LayerPlacement planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                           bool& replanned) const override;

 private:
  SwiftOptions opts_;
};

}  // namespace eccl::eplb
