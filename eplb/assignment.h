// Min-cost perfect assignment (Hungarian algorithm, O(n³)) and the placement alignments built
// on it, which keep unchanged experts where they already are so fewer replicas move.
#pragma once

#include <vector>

#include "eplb/placement.h"

namespace eccl::eplb {

// cost is n×n; returns col[row], minimising Σ cost[row][col[row]]. Deterministic.
std::vector<int> minCostAssignment(const std::vector<std::vector<double>>& cost);

// Same rows, reordered within each rank so an expert the rank already held keeps its old slot.
LayerPlacement keepSlots(const LayerPlacement& next, const LayerPlacement& current);

// Permutes whole rows of `next` onto ranks (within each node, to keep node spreading) so the
// experts they share with the current rows are maximal, then keeps slots. The multiset of rows
// (and so the load balance) is unchanged.
LayerPlacement matchRanksAndSlots(const LayerPlacement& next, const LayerPlacement& current, int nodes);

}  // namespace eccl::eplb
