// How many replicas each expert gets.
#pragma once

#include <vector>

namespace eccl::eplb {

// Min-max-replica: every expert starts with `start[e]` replicas (or 1 when `start` is empty);
// each remaining replica goes to the expert with the highest weight per replica, capped at
// `maxPerExpert` (N: one per rank). Ties go to the lower expert id. Sums to `total`.
std::vector<int> minMaxReplicaAllotment(const std::vector<double>& weights, int total, int maxPerExpert,
                                        std::vector<int> start = {});

// Per-expert weight for a multi-episode objective: mean + z·std over the episodes.
std::vector<double> riskWeights(const std::vector<std::vector<double>>& windows, double z);

}  // namespace eccl::eplb
