#include "eplb/default_policy.h"

#include "eplb/assignment.h"
#include "eplb/rank_packer.h"
#include "eplb/replica_allotment.h"
#include "base/error.h"

namespace eccl::eplb {

std::optional<LayerPlacement> planDefaultLayer(const std::vector<double>& loads, const PolicyInput& in) {
  auto counts = minMaxReplicaAllotment(loads, in.ranks * in.slots, in.ranks);
  return RankPacker({loads}, in.ranks, in.slots, in.nodes, 0.0).lpt(counts);
}

LayerPlacement DefaultPolicy::planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                                        bool& replanned) const {
  auto next = planDefaultLayer(loads.total, in);
  if (!next) {
    if (current == nullptr)
      throw Error(ErrorCode::kInvalidArgument, "default policy: no valid packing for " + std::to_string(in.ranks) +
                                                   " ranks x " + std::to_string(in.slots) + " slots");
    replanned = false;
    return *current;
  }
  replanned = true;
  return current ? keepSlots(*next, *current) : *next;
}

}  // namespace eccl::eplb
