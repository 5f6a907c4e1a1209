// Policies over thousands of random instances: valid output, deterministic, never worse than
// the current placement when one is given (swift, flash), flash never worse than default, and
// reported stats equal an independent recomputation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "eplb/policy.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

struct Instance {
  ExpertLoads loads;
  std::optional<Placement> current;
  int ranks, slots;
};

LayerPlacement randomValidPlacement(int E, int N, int S, std::mt19937& rng) {
  for (;;) {
    std::vector<int> ids(N * S);
    for (int i = 0; i < N * S; ++i) ids[i] = i < E ? i : int(rng() % E);
    std::shuffle(ids.begin(), ids.end(), rng);
    LayerPlacement p(N, S);
    bool ok = true;
    for (int r = 0; r < N && ok; ++r)
      for (int s = 0; s < S; ++s) {
        for (int t = 0; t < s; ++t) ok &= ids[r * S + t] != ids[r * S + s];
        p.set(r, s, ids[r * S + s]);
      }
    if (ok) return p;
  }
}

Instance randomInstance(std::mt19937& rng, bool withCurrent) {
  Instance in;
  in.ranks = 2 + rng() % 7;
  in.slots = 1 + rng() % 4;
  int maxE = in.ranks * in.slots;
  int E = std::max(2, maxE - int(rng() % (maxE / 2 + 1)));
  // Experts with more than N replicas' worth of redundancy cannot be placed without duplicates;
  // keep E large enough that some valid placement exists for the random current placement.
  E = std::max(E, (maxE + in.ranks - 1) / in.ranks);
  in.loads.experts = E;
  int layers = 1 + rng() % 2;
  std::exponential_distribution<double> heavy(0.02);
  for (int l = 0; l < layers; ++l) {
    LayerLoads ll;
    int episodes = rng() % 3;  // 0 = aggregate only
    if (episodes == 0) {
      for (int e = 0; e < E; ++e) ll.total.push_back(rng() % 5 == 0 ? 0.0 : std::round(heavy(rng)));
    } else {
      for (int k = 0; k < episodes; ++k) {
        std::vector<double> ep;
        for (int e = 0; e < E; ++e) ep.push_back(std::round(heavy(rng)));
        ll.episodes.push_back(ep);
      }
    }
    in.loads.layers.push_back(ll);
  }
  in.loads.validate();
  if (withCurrent) {
    Placement p{E, in.ranks, in.slots, {}};
    for (int l = 0; l < layers; ++l) p.layers.push_back(randomValidPlacement(E, in.ranks, in.slots, rng));
    in.current = p;
  }
  return in;
}

// Independent recomputation of the cost model, written plainly.
double naiveImbalance(const LayerPlacement& p, const std::vector<double>& loads) {
  std::vector<int> copies(loads.size(), 0);
  for (int r = 0; r < p.ranks(); ++r)
    for (int s = 0; s < p.slots(); ++s) copies[p.at(r, s)]++;
  double maxLoad = 0, sum = 0;
  for (int r = 0; r < p.ranks(); ++r) {
    double load = 0;
    for (int s = 0; s < p.slots(); ++s) load += loads[p.at(r, s)] / copies[p.at(r, s)];
    maxLoad = std::max(maxLoad, load);
    sum += load;
  }
  return sum > 0 ? maxLoad / (sum / p.ranks()) : 1.0;
}

// Flash's objective with episodes (its default z = 0.5 when loads carry two or more): the worst
// rank's mean + 0.5·std of its load over the episodes, written plainly. Without episodes: the
// aggregate imbalance.
double naiveFlashObjective(const LayerPlacement& p, const LayerLoads& loads) {
  if (loads.episodes.size() < 2) return naiveImbalance(p, loads.total);
  std::vector<int> copies(loads.total.size(), 0);
  for (int r = 0; r < p.ranks(); ++r)
    for (int s = 0; s < p.slots(); ++s) copies[p.at(r, s)]++;
  double worst = 0;
  for (int r = 0; r < p.ranks(); ++r) {
    double sum = 0, sq = 0;
    for (auto& ep : loads.episodes) {
      double load = 0;
      for (int s = 0; s < p.slots(); ++s) load += ep[p.at(r, s)] / copies[p.at(r, s)];
      sum += load;
      sq += load * load;
    }
    const double n = static_cast<double>(loads.episodes.size()), mean = sum / n;
    worst = std::max(worst, mean + 0.5 * std::sqrt(std::max(0.0, sq / n - mean * mean)));
  }
  return worst;
}

class PolicyProperties : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Policies, PolicyProperties, ::testing::Values("default", "swift", "flash"));

TEST_P(PolicyProperties, ThousandRandomInstances) {
  std::mt19937 rng(12345);
  auto policy = makePolicy(GetParam());
  auto reference = makePolicy("default");
  const int instances = 1000;
  for (int i = 0; i < instances; ++i) {
    SCOPED_TRACE("instance " + std::to_string(i));
    Instance in = randomInstance(rng, i % 2 == 1);
    PolicyInput input{&in.loads, in.current ? &*in.current : nullptr, in.ranks, in.slots};
    PolicyResult a = policy->plan(input);
    ASSERT_NO_THROW(a.placement.validate());
    ASSERT_EQ(a.placement.layers.size(), in.loads.layers.size());
    PolicyResult b = policy->plan(input);
    ASSERT_EQ(a.placement.layers, b.placement.layers) << "not deterministic";
    for (size_t l = 0; l < a.layers.size(); ++l) {
      const auto& st = a.layers[l];
      const auto& next = a.placement.layers[l];
      const auto& total = in.loads.layers[l].total;
      EXPECT_NEAR(st.imbalanceAfter, naiveImbalance(next, total), 1e-9);
      EXPECT_LE(st.lowerBound, st.imbalanceAfter + 1e-9);
      auto counts = next.replicaCounts(in.loads.experts);
      EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), in.ranks * in.slots);
      if (in.current) {
        const auto& cur = in.current->layers[l];
        EXPECT_NEAR(st.imbalanceBefore, naiveImbalance(cur, total), 1e-9);
        int moved = 0;
        for (int r = 0; r < in.ranks; ++r)
          for (int s = 0; s < in.slots; ++s) moved += cur.at(r, s) != next.at(r, s);
        EXPECT_EQ(st.moved, moved);
        if (GetParam() == "flash") {
          const auto& layerLoads = in.loads.layers[l];
          EXPECT_LE(naiveFlashObjective(next, layerLoads), naiveFlashObjective(cur, layerLoads) * (1 + 1e-9))
              << "worse than the current placement";
          if (!st.replanned) {
            EXPECT_EQ(next, cur) << "a kept layer changed";
          }
        } else if (GetParam() != "default") {
          EXPECT_LE(st.imbalanceAfter, st.imbalanceBefore + 1e-9) << "worse than the current placement";
          if (!st.replanned) {
            EXPECT_EQ(next, cur) << "a kept layer changed";
          }
        }
      } else if (GetParam() == "flash") {
        auto d = reference->plan(input);
        EXPECT_LE(naiveFlashObjective(next, in.loads.layers[l]), naiveFlashObjective(d.placement.layers[l], in.loads.layers[l]) * (1 + 1e-9))
            << "flash worse than default on its objective";
      }
    }
  }
}

TEST(PolicyProperties, NodesSpreadEachExpertsReplicas) {
  std::mt19937 rng(9);
  for (const char* name : {"default", "swift", "flash"}) {
    for (int trial = 0; trial < 50; ++trial) {
      ExpertLoads loads;
      loads.experts = 12;
      LayerLoads ll;
      for (int e = 0; e < 12; ++e) ll.total.push_back(e == 0 ? 500 : 1 + rng() % 60);
      loads.layers.push_back(ll);
      auto r = makePolicy(name)->plan({&loads, nullptr, 8, 3, /*nodes=*/2});
      const auto& p = r.placement.layers[0];
      auto counts = p.replicaCounts(12);
      for (int e = 0; e < 12; ++e) {
        int perNode[2] = {0, 0};
        for (int rk = 0; rk < 8; ++rk)
          for (int s = 0; s < 3; ++s) perNode[rk / 4] += p.at(rk, s) == e;
        EXPECT_LE(std::max(perNode[0], perNode[1]), (counts[e] + 1) / 2) << name << " trial " << trial << " expert " << e << " copies " << counts[e];
      }
    }
  }
}

TEST(PolicyProperties, BadInputIsRejectedWithClearErrors) {
  ExpertLoads loads;
  loads.experts = 5;
  loads.layers.push_back({{1, 2, 3, 4, 5}, {}});
  EXPECT_THROW(makePolicy("default")->plan({&loads, nullptr, 2, 2}), Error);  // E > N*S
  EXPECT_THROW(makePolicy("default")->plan({&loads, nullptr, 3, 2, 2}), Error);  // nodes must divide ranks
  EXPECT_THROW(makePolicy("greedy"), Error);
  loads.layers[0].total[2] = std::nan("");
  try {
    makePolicy("flash")->plan({&loads, nullptr, 3, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eccl::eplb
