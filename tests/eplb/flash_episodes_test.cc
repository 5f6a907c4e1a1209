// Flash's multi-episode objective: with z > 0 it pairs experts whose loads alternate, so every
// episode is balanced; the aggregate alone cannot tell the pairings apart.
#include <gtest/gtest.h>

#include "eplb/cost_model.h"
#include "eplb/flash_policy.h"

namespace eccl::eplb {
namespace {

TEST(FlashEpisodes, RiskObjectivePairsAntiCorrelatedExperts) {
  ExpertLoads loads;
  loads.experts = 4;
  // Experts 0 and 1 take turns being hot; 2 and 3 are steady. Every expert totals 20.
  loads.layers.push_back({{}, {{10, 0, 5, 5}, {0, 10, 5, 5}, {10, 0, 5, 5}, {0, 10, 5, 5}}});
  loads.validate();
  FlashPolicy risky(FlashOptions{.z = 0.674});
  auto r = risky.plan({&loads, nullptr, 2, 2});
  const auto& p = r.placement.layers[0];
  for (auto& ep : loads.layers[0].episodes) EXPECT_NEAR(imbalance(p, ep), 1.0, 1e-9);
  // Experts 0 and 1 share a rank.
  auto m0 = p.expertMap(0, 4);
  EXPECT_EQ(m0[0] >= 0, m0[1] >= 0);
}

TEST(FlashEpisodes, ManyEpisodesAreCompressedNotIgnored) {
  ExpertLoads loads;
  loads.experts = 4;
  LayerLoads ll;
  for (int k = 0; k < 64; ++k) ll.episodes.push_back(k % 2 ? std::vector<double>{0, 10, 5, 5} : std::vector<double>{10, 0, 5, 5});
  loads.layers.push_back(ll);
  loads.validate();
  // Compression sums pairs of consecutive episodes when limited to an even count, which hides the
  // alternation; with an odd block it stays visible. Either way the result is a valid placement.
  FlashPolicy risky(FlashOptions{.z = 0.674, .maxEpisodes = 64});
  auto r = risky.plan({&loads, nullptr, 2, 2});
  for (auto& ep : loads.layers[0].episodes) EXPECT_NEAR(imbalance(r.placement.layers[0], ep), 1.0, 1e-9);
}

}  // namespace
}  // namespace eccl::eplb
