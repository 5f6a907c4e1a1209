// Helpers shared by the EPLB tests: random placements and loads, and filled expert weights.
#pragma once

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eplb/expert_layout.h"
#include "eplb/expert_loads.h"
#include "eplb/expert_weights.h"
#include "eplb/placement.h"
#include "eplb/weight_loader.h"

namespace eccl::eplb::testing {

// A valid layer: every expert at least once, the remaining slots random distinct extra copies.
inline LayerPlacement randomLayer(int E, int N, int S, std::mt19937& rng) {
  LayerPlacement p(N, S);
  std::vector<int> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<bool>> has(N, std::vector<bool>(E, false));
  std::vector<std::pair<int, int>> free;
  for (int r = 0; r < N; ++r)
    for (int s = 0; s < S; ++s) free.push_back({r, s});
  std::shuffle(free.begin(), free.end(), rng);
  size_t next = 0;
  for (int e : order) {  // one copy each, on distinct slots
    auto [r, s] = free[next++];
    p.set(r, s, e);
    has[r][e] = true;
  }
  for (; next < free.size(); ++next) {
    auto [r, s] = free[next];
    for (int tries = 0; tries < 4 * E; ++tries) {
      int e = static_cast<int>(rng() % E);
      if (!has[r][e]) {
        p.set(r, s, e);
        has[r][e] = true;
        break;
      }
    }
  }
  // A slot left -1 only if its rank already holds every expert: fill is best effort.
  for (int r = 0; r < N; ++r)
    for (int s = 0; s < S; ++s)
      if (p.at(r, s) < 0)
        for (int e = 0; e < E; ++e)
          if (!has[r][e]) {
            p.set(r, s, e);
            has[r][e] = true;
            break;
          }
  return p;
}

inline Placement randomPlacement(int L, int E, int N, int S, std::mt19937& rng) {
  Placement p{E, N, S, {}};
  for (int l = 0; l < L; ++l) p.layers.push_back(randomLayer(E, N, S, rng));
  return p;
}

inline ExpertLoads zipfLoads(int L, int E, double skew, unsigned seed) {
  std::mt19937 rng(seed);
  ExpertLoads loads{E, {}};
  for (int l = 0; l < L; ++l) {
    std::vector<int> rank(E);
    std::iota(rank.begin(), rank.end(), 0);
    std::shuffle(rank.begin(), rank.end(), rng);
    LayerLoads ll;
    for (int e = 0; e < E; ++e) ll.total.push_back(1000.0 / std::pow(rank[e] + 1, skew));
    loads.layers.push_back(ll);
  }
  return loads;
}

// Loads every layer of `w` with `p`'s row for `rank`, content fillExpert(layer, expert).
inline void loadWeights(ExpertWeights& w, const Placement& p, int rank) {
  for (int l = 0; l < w.layers(); ++l)
    w.load(l, layerMaps(p.layers[l], rank, p.experts),
           [&](int s, uint8_t* block) { fillExpert(block, w.layout(), l, p.layers[l].at(rank, s)); });
}

// Empty string when every slot of `layer` holds the bytes of the expert its row names.
inline std::string verifyLayer(const ExpertWeights& w, int layer) {
  auto view = w.read(layer);
  for (int s = 0; s < w.slots(); ++s) {
    int e = view.maps().row[s];
    if (e < 0) continue;
    if (view.checksum(s) != expectedChecksum(w.layout(), layer, e))
      return "layer " + std::to_string(layer) + " slot " + std::to_string(s) + " does not hold expert " + std::to_string(e);
    if (view.maps().expertMap[e] != s) return "layer " + std::to_string(layer) + ": expert_map disagrees with slot " + std::to_string(s);
  }
  return "";
}

// One serving step on the active group: an all_reduce whose result is checked.
inline bool serve(Communicator& c) {
  int64_t v = c.rank() + 1, sum = 0;
  c.allReduce(&v, &sum, 1, DataType::kInt64, ReduceOp::kSum);
  return sum == int64_t(c.size()) * (c.size() + 1) / 2;
}

// Weights hold `p` for `rank` in every layer: rows, maps and bytes.
inline std::string verifyAll(const ExpertWeights& w, const Placement& p, int rank) {
  for (int l = 0; l < w.layers(); ++l) {
    if (auto err = verifyLayer(w, l); !err.empty()) return err;
    auto view = w.read(l);
    if (view.maps().row != p.layers[l].row(rank)) return "layer " + std::to_string(l) + ": wrong row";
    if (view.maps().log2phy != p.layers[l].log2phy(rank, p.experts)) return "layer " + std::to_string(l) + ": wrong log2phy";
  }
  return "";
}

}  // namespace eccl::eplb::testing
