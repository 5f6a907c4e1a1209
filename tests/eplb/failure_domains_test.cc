// Failure-domain-aware placement: with enough redundant slots no single rank (or node) holds an
// expert's only replica; with too few, the heaviest experts are spread first; nothing already
// spread is broken, and every policy's output stays a valid placement.
#include <gtest/gtest.h>

#include "eplb/cost_model.h"
#include "eplb/failure_domains.h"
#include "eplb/policy.h"
#include "tests/eplb/eplb_test_util.h"

namespace eccl::eplb {
namespace {

using namespace testing;

// Experts lost when `rank`'s rows are gone.
int lostWithout(const LayerPlacement& p, int experts, std::vector<int> gone) {
  std::vector<int> count(experts, 0);
  for (int r = 0; r < p.ranks(); ++r)
    if (std::find(gone.begin(), gone.end(), r) == gone.end())
      for (int s = 0; s < p.slots(); ++s)
        if (p.at(r, s) >= 0) count[p.at(r, s)]++;
  return static_cast<int>(std::count(count.begin(), count.end(), 0));
}

TEST(FailureDomains, WithEnoughRedundancyNoSingleRankLossLosesAnExpert) {
  const int E = 16, N = 4, S = 8;  // 32 slots: every expert can have two ranks
  for (const char* policy : {"default", "swift", "flash"}) {
    ExpertLoads loads = zipfLoads(3, E, 1.4, 5);  // skewed: policies give hot experts many copies
    auto plain = makePolicy(policy)->plan({&loads, nullptr, N, S});
    int plainLost = 0;
    for (auto& l : plain.placement.layers)
      for (int r = 0; r < N; ++r) plainLost += lostWithout(l, E, {r});
    EXPECT_GT(plainLost, 0) << policy << ": the test needs a placement that can lose experts";
    auto spread = makePolicy(policy)->plan({&loads, nullptr, N, S, 1, 2});
    for (size_t l = 0; l < spread.placement.layers.size(); ++l) {
      EXPECT_EQ(spread.layers[l].belowDomains, 0) << policy;
      for (int r = 0; r < N; ++r) EXPECT_EQ(lostWithout(spread.placement.layers[l], E, {r}), 0) << policy << " rank " << r;
      EXPECT_EQ(expertsBelowDomains(spread.placement.layers[l], E, {2}), 0);
    }
  }
}

TEST(FailureDomains, ShortRedundancySpreadsTheHeaviestExpertsFirst) {
  const int E = 8;
  LayerPlacement p = initialLayerPlacement(E, 4, 3);  // 12 slots: room for 4 second replicas
  std::vector<double> load{1, 2, 3, 4, 50, 60, 70, 80};
  const int below = spreadOverFailureDomains(p, load, {2});
  EXPECT_EQ(below, 4);
  auto counts = p.replicaCounts(E);
  for (int e = 4; e < 8; ++e) EXPECT_EQ(counts[e], 2) << "heavy expert " << e;
  for (int e = 0; e < 4; ++e) EXPECT_EQ(counts[e], 1) << "light expert " << e;
  Placement whole{E, 4, 3, {p}};
  whole.validate();
}

TEST(FailureDomains, NodeDomainsPutReplicasOnBothNodes) {
  const int E = 8, N = 4, S = 4;  // 2 nodes of 2 ranks
  ExpertLoads loads = zipfLoads(1, E, 1.0, 2);
  auto r = makePolicy("swift")->plan({&loads, nullptr, N, S, 2, 2, true});
  const auto& p = r.placement.layers[0];
  EXPECT_EQ(lostWithout(p, E, {0, 1}), 0) << "node 0 lost";
  EXPECT_EQ(lostWithout(p, E, {2, 3}), 0) << "node 1 lost";
}

TEST(FailureDomains, OneDomainChangesNothingAndBadCountsAreRefused) {
  ExpertLoads loads = zipfLoads(1, 8, 1.0, 2);
  auto a = makePolicy("default")->plan({&loads, nullptr, 4, 4});
  auto b = makePolicy("default")->plan({&loads, nullptr, 4, 4, 1, 1});
  EXPECT_EQ(a.placement.layers, b.placement.layers);
  EXPECT_THROW(makePolicy("default")->plan({&loads, nullptr, 4, 4, 1, 0}), Error);
}

}  // namespace
}  // namespace eccl::eplb
