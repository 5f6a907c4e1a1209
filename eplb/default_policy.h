// "default": min-max-replica allotment (each extra replica to the expert with the highest load
// per replica), then LPT placement (heaviest replica to the least-loaded rank with a free slot
// that does not hold that expert). Experts a rank keeps stay in their slot.
#pragma once

#include "eplb/policy.h"

namespace eccl::eplb {

// The default plan for one layer; nullopt when no valid packing was found.
std::optional<LayerPlacement> planDefaultLayer(const std::vector<double>& loads, const PolicyInput& in);

class DefaultPolicy final : public PlacementPolicy {
 public:
  std::string name() const override { return "default"; }

 protected:
  LayerPlacement planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                           bool& replanned) const override;
};

}  // namespace eccl::eplb
