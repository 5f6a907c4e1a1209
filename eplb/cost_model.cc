#include "eplb/cost_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace eccl::eplb {

std::vector<double> rankLoads(const LayerPlacement& p, const std::vector<double>& loads) {
  std::vector<int> counts = p.replicaCounts(static_cast<int>(loads.size()));
  std::vector<double> out(p.ranks(), 0.0);
  for (int r = 0; r < p.ranks(); ++r)
    for (int s = 0; s < p.slots(); ++s) {
      int e = p.at(r, s);
      out[r] += loads[e] / counts[e];
    }
  return out;
}

double imbalance(const LayerPlacement& p, const std::vector<double>& loads) {
  auto r = rankLoads(p, loads);
  double mean = std::accumulate(r.begin(), r.end(), 0.0) / r.size();
  if (mean <= 0) return 1.0;
  return *std::max_element(r.begin(), r.end()) / mean;
}

namespace {

// Replicas needed so that no replica carries more than t.
long long replicasNeeded(const std::vector<double>& loads, double t) {
  long long n = 0;
  for (double l : loads) n += std::max<long long>(1, static_cast<long long>(std::ceil(l / t - 1e-12)));
  return n;
}

}  // namespace

double lowerBound(const std::vector<double>& loads, int ranks, int slots) {
  double total = std::accumulate(loads.begin(), loads.end(), 0.0);
  double maxLoad = loads.empty() ? 0.0 : *std::max_element(loads.begin(), loads.end());
  double bound = total / ranks;
  const long long capacity = static_cast<long long>(ranks) * slots;
  if (maxLoad <= 0 || replicasNeeded(loads, maxLoad) > capacity) return bound;  // E > N·S: nothing fits
  // The replica count is non-increasing in T: bisect to the edge, then snap to the breakpoint.
  // For T just above the edge each expert needs c_e = ⌈load_e/T⌉ replicas, and the count stays
  // the same down to max_e load_e/c_e, which is the least feasible T (a breakpoint load_e/k).
  double lo = maxLoad / static_cast<double>(capacity) / 2, hi = maxLoad;
  for (int i = 0; i < 100 && hi - lo > 1e-10 * hi; ++i) {
    double mid = (lo + hi) / 2;
    (replicasNeeded(loads, mid) <= capacity ? hi : lo) = mid;
  }
  double least = 0;
  for (double l : loads)
    if (l > 0) least = std::max(least, l / std::max<long long>(1, static_cast<long long>(std::ceil(l / hi - 1e-12))));
  return std::max(bound, least);
}

double lowerBoundRatio(const std::vector<double>& loads, int ranks, int slots) {
  double mean = std::accumulate(loads.begin(), loads.end(), 0.0) / ranks;
  return mean > 0 ? lowerBound(loads, ranks, slots) / mean : 1.0;
}

double meanEpisodeImbalance(const LayerPlacement& p, const LayerLoads& loads) {
  auto windows = loads.windows();
  double sum = 0;
  for (auto& w : windows) sum += imbalance(p, w);
  return windows.empty() ? 1.0 : sum / windows.size();
}

int expertsMoved(const LayerPlacement& before, const LayerPlacement& after) {
  int moved = 0;
  for (size_t i = 0; i < after.flat().size(); ++i) moved += before.flat()[i] != after.flat()[i];
  return moved;
}

}  // namespace eccl::eplb
