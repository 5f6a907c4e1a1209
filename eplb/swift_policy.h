// "swift": migration-aware. Starts from the current placement and moves as few replicas as it
// can: layers whose imbalance is under `imbalanceThreshold` are left alone; otherwise it applies
// the best improving move, one at a time, until none helps or `maxMoves` replicas have moved:
//   - swap: exchange one replica of the most loaded rank with one of another rank (2 moves);
//   - re-replicate: on some rank, replace a replica of an expert that has several with a new
//     replica of an expert on the most loaded rank (1 move).
// Without a current placement it plans like "default".
#pragma once

#include "eplb/policy.h"

namespace eccl::eplb {

struct SwiftOptions {
  double imbalanceThreshold = 1.01;
  int maxMoves = -1;  // per layer; -1 = N·S/4 (at least 8)
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
