#include "bench/eplb_workloads.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "base/error.h"

namespace eccl::bench {

eplb::LayerPlacement randomPlacement(int experts, int ranks, int slots, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::vector<int> ids(size_t(ranks) * slots);
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = i < size_t(experts) ? int(i) : int(rng() % experts);
    std::shuffle(ids.begin(), ids.end(), rng);
    eplb::LayerPlacement p(ranks, slots);
    bool ok = true;
    for (int r = 0; r < ranks && ok; ++r) {
      std::vector<int> row(ids.begin() + size_t(r) * slots, ids.begin() + size_t(r + 1) * slots);
      std::sort(row.begin(), row.end());
      ok = std::adjacent_find(row.begin(), row.end()) == row.end();
      for (int s = 0; s < slots; ++s) p.set(r, s, ids[size_t(r) * slots + s]);
    }
    if (ok) return p;
  }
  throw Error(ErrorCode::kInvalidArgument, "could not draw a random placement without duplicates");
}

Workload vllmAscendCheck(int layers, int experts, int ranks, int slots, int steps, uint64_t seed) {
  Workload w;
  w.current = {experts, ranks, slots, {}};
  w.loads.experts = experts;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int l = 0; l < layers; ++l) {
    auto p = randomPlacement(experts, ranks, slots, rng());
    eplb::LayerLoads ll;
    for (int t = 0; t < steps; ++t) {
      std::vector<double> ep(experts, 0.0);
      for (int r = 0; r < ranks; ++r)
        for (int s = 0; s < slots; ++s) ep[p.at(r, s)] += 999.0 * std::pow(u(rng), 10) + 1.0;
      ll.episodes.push_back(std::move(ep));
    }
    w.current.layers.push_back(std::move(p));
    w.loads.layers.push_back(std::move(ll));
  }
  w.loads.validate();
  return w;
}

eplb::ExpertLoads zipfDrifting(int layers, int experts, int episodes, double s, double tokens, int driftSwaps,
                               uint64_t seed) {
  std::mt19937_64 rng(seed);
  eplb::ExpertLoads out;
  out.experts = experts;
  std::vector<double> weight(experts);
  double norm = 0;
  for (int k = 0; k < experts; ++k) norm += weight[k] = 1.0 / std::pow(k + 1, s);
  for (int l = 0; l < layers; ++l) {
    std::vector<int> perm(experts);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    eplb::LayerLoads ll;
    for (int t = 0; t < episodes; ++t) {
      for (int d = 0; d < driftSwaps; ++d) std::swap(perm[rng() % experts], perm[rng() % experts]);
      std::vector<double> ep(experts);
      // Poisson-like noise around the expected count keeps episodes from being identical.
      for (int k = 0; k < experts; ++k) {
        double mean = tokens * weight[k] / norm;
        std::normal_distribution<double> noise(mean, std::sqrt(mean + 1));
        ep[perm[k]] = std::max(0.0, std::round(noise(rng)));
      }
      ll.episodes.push_back(std::move(ep));
    }
    out.layers.push_back(std::move(ll));
  }
  out.validate();
  return out;
}

}  // namespace eccl::bench
