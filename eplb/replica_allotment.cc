#include "eplb/replica_allotment.h"

#include <cmath>
#include <queue>

namespace eccl::eplb {

std::vector<int> minMaxReplicaAllotment(const std::vector<double>& w, int total, int maxPerExpert,
                                        std::vector<int> start) {
  const int E = static_cast<int>(w.size());
  std::vector<int> c = start.empty() ? std::vector<int>(E, 1) : std::move(start);
  int used = 0;
  for (int x : c) used += x;
  // Max-heap on (weight per replica, -expert): deterministic tie-break by lower id.
  using Item = std::pair<double, int>;
  std::priority_queue<Item> heap;
  for (int e = 0; e < E; ++e)
    if (c[e] < maxPerExpert) heap.push({w[e] / c[e], -e});
  while (used < total && !heap.empty()) {
    int e = -heap.top().second;
    heap.pop();
    ++c[e];
    ++used;
    if (c[e] < maxPerExpert) heap.push({w[e] / c[e], -e});
  }
  return c;
}

std::vector<double> riskWeights(const std::vector<std::vector<double>>& windows, double z) {
  const size_t E = windows.empty() ? 0 : windows[0].size();
  std::vector<double> out(E, 0.0);
  const double W = static_cast<double>(windows.size());
  for (size_t e = 0; e < E; ++e) {
    double sum = 0, sq = 0;
    for (auto& win : windows) {
      sum += win[e];
      sq += win[e] * win[e];
    }
    double mean = sum / W;
    double var = std::max(0.0, sq / W - mean * mean);
    out[e] = mean + z * std::sqrt(var);
  }
  return out;
}

}  // namespace eccl::eplb
