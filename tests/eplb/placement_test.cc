#include <gtest/gtest.h>

#include "eplb/placement.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

void expectInvalid(const Placement& p, const std::vector<std::string>& words) {
  try {
    p.validate();
    ADD_FAILURE() << "accepted an invalid placement";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    for (auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " lacks " << w;
  }
}

TEST(Placement, InitialLayoutMatchesVllmAscend) {
  auto p = initialLayerPlacement(8, 2, 5);
  EXPECT_EQ(p.row(0), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p.row(1), (std::vector<int>{5, 6, 7, 0, 1}));
  EXPECT_EQ(p.replicaCounts(8), (std::vector<int>{2, 2, 1, 1, 1, 1, 1, 1}));
}

TEST(Placement, ExpertMapIsLocalSlotOrMinusOne) {
  auto p = initialLayerPlacement(8, 2, 5);
  EXPECT_EQ(p.expertMap(1, 8), (std::vector<int>{3, 4, -1, -1, -1, 0, 1, 2}));
  EXPECT_EQ(p.expertMap(0, 8), (std::vector<int>{0, 1, 2, 3, 4, -1, -1, -1}));
}

TEST(Placement, Log2PhyUsesOwnReplicaElseSpreadsEvenly) {
  // 8 ranks x 1 slot: expert 0 on ranks 0-3, expert 1 on ranks 4-7.
  auto p = LayerPlacement::fromRows({{0}, {0}, {0}, {0}, {1}, {1}, {1}, {1}});
  for (int r = 0; r < 8; ++r) {
    auto m = p.log2phy(r, 2);
    if (r < 4) EXPECT_EQ(m[0], r);  // own replica: physical id = rank*S + slot
    else EXPECT_EQ(m[1], r);
  }
  // Non-holders of expert 1 (ranks 0-3) use replica (r + 1) mod 4 of [4,5,6,7]: all different.
  std::vector<int> used;
  for (int r = 0; r < 4; ++r) used.push_back(p.log2phy(r, 2)[1]);
  EXPECT_EQ(used, (std::vector<int>{5, 6, 7, 4}));
  // An expert with no replica maps to -1.
  EXPECT_EQ(p.log2phy(0, 3)[2], -1);
}

TEST(Placement, Log2PhySpreadIsBalancedForEveryCount) {
  // Expert 0 has 3 replicas on ranks 0..2; the 9 other ranks split 3/3/3 over them.
  std::vector<std::vector<int>> rows(12, std::vector<int>{1});
  for (int r = 0; r < 12; ++r) rows[r][0] = r < 3 ? 0 : r - 2;
  auto p = LayerPlacement::fromRows(rows);
  std::vector<int> hits(3, 0);
  for (int r = 3; r < 12; ++r) hits[p.log2phy(r, 10)[0]]++;
  EXPECT_EQ(hits, (std::vector<int>{3, 3, 3}));
}

TEST(Placement, ValidationNamesLayerRankSlotAndExpert) {
  Placement p{4, 2, 2, {LayerPlacement::fromRows({{0, 1}, {2, 3}}), LayerPlacement::fromRows({{0, 0}, {2, 3}})}};
  expectInvalid(p, {"layer 1", "rank 0", "expert 0", "slots 0 and 1"});
  p.layers[1] = LayerPlacement::fromRows({{0, 1}, {2, 9}});
  expectInvalid(p, {"layer 1", "rank 1", "slot 1", "expert id 9"});
  p.layers[1] = LayerPlacement::fromRows({{0, 1}, {2, 1}});
  expectInvalid(p, {"layer 1", "expert 3", "no replica"});
  p.layers[1] = LayerPlacement::fromRows({{0, 1, 2}, {3, 0, 1}});
  expectInvalid(p, {"layer 1", "3 slots", "expected 2"});
  Placement tooMany{5, 2, 2, {}};
  expectInvalid(tooMany, {"5 experts", "2 ranks x 2 slots"});
  EXPECT_THROW(LayerPlacement::fromRows({{0, 1}, {2}}), Error);
}

}  // namespace
}  // namespace eccl::eplb
