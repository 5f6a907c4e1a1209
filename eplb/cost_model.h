// The cost model every policy and report shares: an expert's tokens split evenly over its
// replicas; a rank's load is the sum over its slots of load(e) / replicas(e); a layer's
// imbalance is max rank load / mean rank load.
#pragma once

#include <vector>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplb {

std::vector<double> rankLoads(const LayerPlacement& p, const std::vector<double>& loads);
// max / mean of rankLoads; 1 when every load is 0.
double imbalance(const LayerPlacement& p, const std::vector<double>& loads);

// lowerBound() relative to the mean rank load (1 when every load is 0): the best imbalance any
// placement could reach.
double lowerBoundRatio(const std::vector<double>& loads, int ranks, int slots);

// Mean over the layer's episodes (or its aggregate alone) of the per-episode imbalance: what
// each serving step sees.
double meanEpisodeImbalance(const LayerPlacement& p, const LayerLoads& loads);

// A lower bound on the max rank load of any valid placement with these loads:
// max(total / N, the least T with Σ_e max(1, ⌈load_e / T⌉) ≤ N·S).
// The first is the mean; the second holds because a placement whose max rank load is T gives
// every replica of e at most T, so e needs ⌈load_e/T⌉ replicas and all of them must fit.
double lowerBound(const std::vector<double>& loads, int ranks, int slots);

// Slots whose expert differs between two placements of the same shape: the number of expert
// replicas that must be moved in (each costs one transfer).
int expertsMoved(const LayerPlacement& before, const LayerPlacement& after);

}  // namespace eccl::eplb
