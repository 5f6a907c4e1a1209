#include <gtest/gtest.h>

#include "eplb/load_recorder.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

TEST(LoadRecorder, SlotCountsBecomeLogicalLoadsPerEpisode) {
  Placement p{3, 2, 2, {LayerPlacement::fromRows({{0, 1}, {2, 0}})}};
  LoadRecorder rec(1, 2, 2, /*stepsPerEpisode=*/2);
  std::vector<double> r0{5, 1}, r1{2, 3};
  rec.recordRank(0, 0, r0);
  rec.recordRank(0, 1, r1);
  rec.endStep();
  rec.record(0, 0, 0, 1);
  rec.endStep();  // episode 0: steps 0-1
  rec.record(0, 1, 1, 10);
  rec.endStep();  // episode 1: step 2
  EXPECT_EQ(rec.steps(), 3);
  EXPECT_EQ(rec.episodes(), 2);
  auto loads = rec.logicalLoads(p);
  ASSERT_EQ(loads.layers.size(), 1u);
  // Expert 0 sits in rank 0 slot 0 and rank 1 slot 1: its load is the sum of both.
  EXPECT_EQ(loads.layers[0].episodes[0], (std::vector<double>{5 + 1 + 3, 1, 2}));
  EXPECT_EQ(loads.layers[0].episodes[1], (std::vector<double>{10, 0, 0}));
  EXPECT_EQ(loads.layers[0].total, (std::vector<double>{19, 1, 2}));
}

TEST(LoadRecorder, MergeAddsOtherRanksViews) {
  Placement p{2, 2, 1, {LayerPlacement::fromRows({{0}, {1}})}};
  LoadRecorder a(1, 2, 1), b(1, 2, 1);
  a.record(0, 0, 0, 4);
  a.endStep();
  b.record(0, 1, 0, 6);
  b.endStep();
  a.merge(b);
  EXPECT_EQ(a.logicalLoads(p).layers[0].total, (std::vector<double>{4, 6}));
  b.endStep();
  EXPECT_THROW(a.merge(b), Error);  // different step counts
  a.reset();
  EXPECT_EQ(a.steps(), 0);
}

TEST(LoadRecorder, BadIndicesAndCountsNameWhatIsWrong) {
  LoadRecorder rec(2, 4, 3);
  try {
    rec.record(1, 4, 0, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rec.record(0, 0, 0, -1), Error);
  std::vector<double> wrong(2);
  EXPECT_THROW(rec.recordRank(0, 0, wrong), Error);
  Placement other{3, 4, 2, {}};
  EXPECT_THROW(rec.logicalLoads(other), Error);
}

}  // namespace
}  // namespace eccl::eplb
