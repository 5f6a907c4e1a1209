#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "eplb/cost_model.h"

namespace eccl::eplb {
namespace {

TEST(CostModel, RankLoadSplitsTokensOverReplicas) {
  auto p = LayerPlacement::fromRows({{0, 1}, {0, 2}});
  auto r = rankLoads(p, {100, 30, 10});
  EXPECT_DOUBLE_EQ(r[0], 50 + 30);
  EXPECT_DOUBLE_EQ(r[1], 50 + 10);
  EXPECT_DOUBLE_EQ(imbalance(p, {100, 30, 10}), 80.0 / 70.0);
  EXPECT_DOUBLE_EQ(imbalance(p, {0, 0, 0}), 1.0);
}

TEST(CostModel, ExpertsMovedCountsChangedSlots) {
  auto a = LayerPlacement::fromRows({{0, 1}, {2, 3}});
  auto b = LayerPlacement::fromRows({{0, 2}, {1, 3}});
  EXPECT_EQ(expertsMoved(a, a), 0);
  EXPECT_EQ(expertsMoved(a, b), 2);
}

TEST(CostModel, LowerBoundTermsEachBind) {
  EXPECT_DOUBLE_EQ(lowerBound({10, 10, 10, 10}, 2, 2), 20);  // the mean binds
  // 6 slots: a per-replica cap T = 30 needs 3 + 1 + 1 + 1 = 6 replicas, any lower T needs 7,
  // so some rank carries at least 30 although the mean is 15.5.
  EXPECT_DOUBLE_EQ(lowerBound({90, 1, 1, 1}, 6, 1), 30);
  EXPECT_DOUBLE_EQ(lowerBound({0, 0}, 2, 1), 0);
}

// Exhaustive optimum for tiny instances: every assignment of experts to N x S slots.
double bruteForceOptimum(const std::vector<double>& loads, int N, int S) {
  const int E = static_cast<int>(loads.size()), slots = N * S;
  std::vector<int> ids(slots, 0);
  double best = 1e300;
  std::function<void(int)> go = [&](int i) {
    if (i == slots) {
      LayerPlacement p(N, S);
      for (int k = 0; k < slots; ++k) p.set(k / S, k % S, ids[k]);
      auto c = p.replicaCounts(E);
      for (int e = 0; e < E; ++e)
        if (c[e] == 0) return;
      for (int r = 0; r < N; ++r)
        for (int a = 0; a < S; ++a)
          for (int b = a + 1; b < S; ++b)
            if (p.at(r, a) == p.at(r, b)) return;
      auto rl = rankLoads(p, loads);
      best = std::min(best, *std::max_element(rl.begin(), rl.end()));
      return;
    }
    for (int e = 0; e < E; ++e) {
      ids[i] = e;
      go(i + 1);
    }
  };
  go(0);
  return best;
}

TEST(CostModel, LowerBoundNeverExceedsTheTrueOptimum) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    int N = 2 + rng() % 2, S = 2, E = 2 + rng() % (N * S - 1);
    std::vector<double> loads(E);
    for (auto& l : loads) l = 1 + rng() % 100;
    double opt = bruteForceOptimum(loads, N, S);
    EXPECT_LE(lowerBound(loads, N, S), opt + 1e-9) << "trial " << trial;
  }
}

}  // namespace
}  // namespace eccl::eplb
