// The placements of one elastic membership change (N -> M ranks), which every rank computes the
// same way from the current placement and loads:
//  - scale-up (ranks only join): `staged` keeps every current row (at its new rank) and gives
//    each joining rank the rows the policy's `target` gives it, so before the switch experts only
//    flow to the joiners (over the standby group) and serving ranks change nothing;
//  - scale-down (ranks only leave): `staged` keeps the survivors' rows and puts every expert that
//    only leavers hold in place of a redundant replica, so before the switch leavers send away
//    exactly what nobody else has (over the old group).
// After the switch `target` — the policy's placement for the M ranks, planned from `staged` — is
// applied layer by layer like any EPLB rebalance. Placements are in the new numbering.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplb {

struct ElasticPlan {
  int oldSize = 0, newSize = 0;
  std::vector<int> oldToNew;  // per old rank: its new rank, or -1 (leaving)
  Placement staged;           // held at the switch (new numbering)
  Placement target;           // the policy's placement for the new membership (new numbering)

  bool growing() const { return newSize > oldSize; }
  // Placements before and after the pre-switch transfer, in the numbering of the group that
  // carries it: the new group when growing (from = `staged` with the joiners' rows empty, so
  // `current` is not needed and joiners can compute it), the old one when shrinking (leavers'
  // rows unchanged).
  Placement carrierFrom(const Placement& current) const;
  Placement carrierTo(const Placement& current) const;

  // Throws Error(kInvalidArgument) naming the problem: a mapping that is not a bijection onto
  // survivors, ranks both joining and leaving, E > M·S, or loads of another shape.
  static ElasticPlan make(const Placement& current, const ExpertLoads& loads, int newSize, std::vector<int> oldToNew,
                          const std::string& policy, int nodes = 1);

  std::vector<uint8_t> encode() const;  // for joiners, which know neither placement nor loads
  static ElasticPlan decode(const std::vector<uint8_t>& bytes);
};

// Puts every expert with no replica in place of a redundant one (or an empty slot): the heaviest
// missing expert first, replacing the replica whose expert loses least (lowest load per remaining
// replica). `load` has one entry per expert. Throws Error(kInvalidArgument) when no redundant
// replica is left for a missing expert.
void restoreMissingExperts(LayerPlacement& p, const std::vector<double>& load);

// `p`'s rows moved to new ranks (row r to map[r]; -1 drops it), other ranks' slots empty.
Placement renumberRanks(const Placement& p, const std::vector<int>& map, int ranks);

}  // namespace eccl::eplb
