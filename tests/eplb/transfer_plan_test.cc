// TransferPlan properties over random placement changes: every needed expert gets exactly one
// source, local copies when the rank already holds it, unique tags that decode back, one buffer
// per receive, minimal bytes, balanced senders, and digests that tell plans apart.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "eplb/transfer_plan.h"
#include "tests/eplb/eplb_test_util.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

using testing::randomPlacement;

const ExpertLayout kLayout = ExpertLayout::ffn(3 * 256 * 2 * 4);

void checkProperties(const Placement& from, const Placement& to, const TransferPlan& plan) {
  const int E = from.experts;
  uint64_t minimum = 0;
  std::set<uint64_t> tags;
  for (int l = 0; l < plan.layers(); ++l) {
    const auto& a = from.layers[l];
    const auto& b = to.layers[l];
    const auto& lp = plan.layer(l);
    std::map<std::pair<int, int>, int> filled;  // (dst, slot) -> how many plan entries fill it
    for (auto& t : lp.transfers) {
      EXPECT_EQ(t.layer, l);
      EXPECT_NE(t.src, t.dst) << "a transfer to itself";
      EXPECT_EQ(a.at(t.src, t.srcSlot), t.expert) << "the source does not hold the expert";
      EXPECT_EQ(b.at(t.dst, t.dstSlot), t.expert);
      EXPECT_LT(a.expertMap(t.dst, E)[t.expert], 0) << "a network transfer where a local copy would do";
      filled[{t.dst, t.dstSlot}]++;
      for (int k = 0; k < kLayout.tensorCount(); ++k) {
        uint64_t tag = plan.tag(t, k);
        EXPECT_TRUE(tags.insert(tag).second) << "tag reused";
        EXPECT_EQ(plan.decodeTag(tag), (TagFields{l, t.expert, k, t.src, t.dst}));
      }
    }
    for (auto& c : lp.copies) {
      EXPECT_EQ(a.at(c.rank, c.srcSlot), c.expert);
      EXPECT_EQ(b.at(c.rank, c.dstSlot), c.expert);
      filled[{c.rank, c.dstSlot}]++;
    }
    for (int r = 0; r < b.ranks(); ++r)
      for (int s = 0; s < b.slots(); ++s) {
        const int e = b.at(r, s);
        const bool needs = e >= 0 && a.at(r, s) != e;
        EXPECT_EQ((filled[{r, s}]), needs ? 1 : 0) << "layer " << l << " rank " << r << " slot " << s;
        if (needs && a.expertMap(r, E)[e] < 0) minimum += kLayout.payloadBytes();
      }
  }
  EXPECT_EQ(plan.networkBytes(), minimum);
  EXPECT_EQ(plan.minimumNetworkBytes(), minimum);
  uint64_t sent = 0, received = 0;
  for (int r = 0; r < plan.ranks(); ++r) {
    sent += plan.bytesSent(r);
    received += plan.bytesReceived(r);
  }
  EXPECT_EQ(sent, minimum);
  EXPECT_EQ(received, minimum);
}

TEST(TransferPlan, RandomPlacementChangesHaveEveryProperty) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const int N = 2 + static_cast<int>(rng() % 7), S = 2 + static_cast<int>(rng() % 5);
    const int E = std::max(1, N * S - static_cast<int>(rng() % (N * S)));
    const int L = 1 + static_cast<int>(rng() % 4);
    Placement from = randomPlacement(L, E, N, S, rng), to = randomPlacement(L, E, N, S, rng);
    TransferPlan plan = TransferPlan::build(from, to, kLayout);
    checkProperties(from, to, plan);
    // Deterministic: building again gives the same plan and digest.
    EXPECT_EQ(TransferPlan::build(from, to, kLayout).digest(), plan.digest());
    EXPECT_TRUE(TransferPlan::build(from, from, kLayout).empty());
  }
}

TEST(TransferPlan, NewRanksWithEmptySlotsAndDrainedRanks) {
  std::mt19937 rng(5);
  Placement old = randomPlacement(3, 12, 3, 4, rng);
  Placement grown{12, 5, 4, {}}, to = randomPlacement(3, 12, 5, 4, rng);
  for (auto& l : old.layers) {  // ranks 3 and 4 are new: every slot empty
    LayerPlacement g(5, 4);
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 4; ++s) g.set(r, s, l.at(r, s));
    grown.layers.push_back(g);
  }
  TransferPlan up = TransferPlan::build(grown, to, kLayout);
  checkProperties(grown, to, up);
  EXPECT_EQ(up.bytesSent(3), 0u);
  EXPECT_EQ(up.bytesSent(4), 0u);
  // Draining: `to` leaves the last rank empty; it only sends.
  Placement drained = to;
  for (auto& l : drained.layers)
    for (int s = 0; s < 4; ++s) l.set(4, s, -1);
  for (auto& l : drained.layers)  // keep every expert somewhere: put rank 4's experts on rank 0
    for (int e = 0; e < 12; ++e)
      if (l.replicaCounts(12)[e] == 0) {
        for (int s = 0; s < 4; ++s)
          if (l.replicaCounts(12)[l.at(0, s)] > 1 && l.expertMap(0, 12)[e] < 0) {
            l.set(0, s, e);
            break;
          }
      }
  TransferPlan down = TransferPlan::build(to, drained, kLayout);
  checkProperties(to, drained, down);
  EXPECT_EQ(down.bytesReceived(4), 0u);
}

TEST(TransferPlan, SendersAreBalancedAcrossHolders) {
  // Expert 0 is on ranks 0 and 1; ranks 2..5 all need it: two each, not four from rank 0.
  LayerPlacement from = LayerPlacement::fromRows({{0, 1}, {0, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}});
  LayerPlacement to = LayerPlacement::fromRows({{0, 1}, {0, 2}, {0, 4}, {0, 6}, {0, 8}, {0, 10}});
  Placement a{11, 6, 2, {from}}, b{11, 6, 2, {to}};
  // `to` drops experts 3, 5, 7, 9 entirely: allowed for a plan (only `to`'s needs matter).
  TransferPlan plan = TransferPlan::build(a, b, kLayout);
  EXPECT_EQ(plan.bytesSent(0), 2 * kLayout.payloadBytes());
  EXPECT_EQ(plan.bytesSent(1), 2 * kLayout.payloadBytes());
}

TEST(TransferPlan, DigestsTellDifferentPlansApart) {
  std::mt19937 rng(3);
  Placement from = randomPlacement(2, 8, 4, 3, rng), to = randomPlacement(2, 8, 4, 3, rng);
  Placement other = to;
  std::swap(other.layers[1], other.layers[0]);
  auto d1 = TransferPlan::build(from, to, kLayout).digest();
  auto d2 = TransferPlan::build(from, other, kLayout).digest();
  EXPECT_NE(d1, d2);
  EXPECT_NE(TransferPlan::build(from, to, ExpertLayout::ffn(1 << 20)).digest(), d1) << "expert size is part of the plan";
}

TEST(TransferPlan, BadInputsNameTheProblem) {
  LayerPlacement a = LayerPlacement::fromRows({{0, 1}, {2, 3}});
  auto expectError = [](const Placement& x, const Placement& y, const std::string& part) {
    try {
      TransferPlan::build(x, y, kLayout);
      ADD_FAILURE() << "expected an error mentioning " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  Placement from{5, 2, 2, {a}};
  expectError(from, Placement{5, 2, 2, {LayerPlacement::fromRows({{0, 4}, {2, 3}})}}, "needs expert 4, which no rank holds");
  expectError(from, Placement{5, 2, 2, {LayerPlacement::fromRows({{0, 0}, {2, 3}})}}, "rank 0 slot 1: expert 0 is already in slot 0");
  expectError(from, Placement{5, 2, 2, {LayerPlacement::fromRows({{0, 9}, {2, 3}})}}, "expert 9 is out of range");
  expectError(from, Placement{5, 3, 2, {}}, "placements differ in shape");
}

}  // namespace
}  // namespace eccl::eplb
