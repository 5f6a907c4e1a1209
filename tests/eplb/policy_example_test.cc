// The seeds' worked example: loads [600, 560, 120, 120, 20, 10, 10, 10] on 8 ranks × 2 slots.
#include <gtest/gtest.h>

#include <numeric>

#include "eplb/cost_model.h"
#include "eplb/policy.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

ExpertLoads exampleLoads() {
  ExpertLoads l;
  l.experts = 8;
  l.layers.push_back({{600, 560, 120, 120, 20, 10, 10, 10}, {}});
  return l;
}

double maxRankLoad(const LayerPlacement& p, const std::vector<double>& loads) {
  auto r = rankLoads(p, loads);
  return *std::max_element(r.begin(), r.end());
}

TEST(PolicyExample, DefaultGivesTheSeedsFigure) {
  auto loads = exampleLoads();
  auto res = makePolicy("default")->plan({&loads, nullptr, 8, 2});
  EXPECT_NEAR(maxRankLoad(res.placement.layers[0], loads.layers[0].total), 232.0, 1e-9);
  EXPECT_NEAR(res.layers[0].imbalanceAfter, 1.28, 1e-9);
}

TEST(PolicyExample, FlashFindsTheTrueOptimum) {
  auto loads = exampleLoads();
  auto res = makePolicy("flash")->plan({&loads, nullptr, 8, 2});
  EXPECT_NEAR(maxRankLoad(res.placement.layers[0], loads.layers[0].total), 590.0 / 3, 1e-9);
  EXPECT_NEAR(res.layers[0].imbalanceAfter, (590.0 / 3) / 181.25, 1e-9);
}

TEST(PolicyExample, LowerBoundIsValidAndReported) {
  auto loads = exampleLoads();
  double lb = lowerBound(loads.layers[0].total, 8, 2);
  EXPECT_NEAR(lb, 181.25, 1e-9);  // the mean dominates here
  EXPECT_LE(lb, 590.0 / 3);
  auto res = makePolicy("flash")->plan({&loads, nullptr, 8, 2});
  EXPECT_NEAR(res.layers[0].lowerBound, 1.0, 1e-9);
}

}  // namespace
}  // namespace eccl::eplb

namespace eccl::eplb {
namespace {

// More slots per rank than experts would force a rank to hold one expert twice: every policy
// refuses it by name (the default policy used to produce a map its own check then rejected).
TEST(PolicyExample, MoreSlotsPerRankThanExpertsIsRefusedByEveryPolicy) {
  auto loads = exampleLoads();
  for (const char* name : {"default", "swift", "flash"}) {
    try {
      makePolicy(name)->plan({&loads, nullptr, 4, 9});
      ADD_FAILURE() << name << " accepted 9 slots for 8 experts";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("9 slots per rank for 8 experts"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace eccl::eplb
