// FailureAgreement and RecoveryDecision: how survivors agree on one failed set (pure logic).
#include <gtest/gtest.h>

#include "base/error.h"
#include "groups/group/failure_agreement.h"

namespace eccl {
namespace {

TEST(FailureAgreement, WaitsOnlyForRanksNobodyNamed) {
  FailureAgreement a(5);
  EXPECT_FALSE(a.quorum());
  EXPECT_EQ(a.awaited(), (std::vector<int>{0, 1, 2, 3, 4}));
  a.addView(0, {2});
  EXPECT_EQ(a.awaited(), (std::vector<int>{1, 3, 4}));
  a.addView(1, {2});
  a.addView(3, {});
  EXPECT_EQ(a.awaited(), (std::vector<int>{4}));
  EXPECT_EQ(a.decide(), (std::set<int>{2, 4}));  // at the deadline, the silent rank 4 counts as failed
  a.addView(4, {2});
  EXPECT_TRUE(a.awaited().empty());
  EXPECT_EQ(a.decide(), (std::set<int>{2}));
}

TEST(FailureAgreement, ANamedRankThatPostsAnywayIsStillFailed) {
  // Rank 1 was frozen long enough to be named, then woke up: the others already count it out.
  FailureAgreement a(3);
  a.addView(0, {1});
  a.addView(1, {});
  a.addView(2, {});
  EXPECT_EQ(a.decide(), (std::set<int>{1}));
}

TEST(FailureAgreement, ARankCutOffFromTheRestIsOutvotedNotTheCauseOfEveryonesExclusion) {
  // Rank 3 lost its links (the others closed theirs on it): it names everyone, they name it.
  FailureAgreement a(4);
  a.addView(3, {0, 1, 2});
  EXPECT_FALSE(a.quorum());  // alone it may not decide that everyone else failed
  a.addView(0, {3});
  EXPECT_FALSE(a.quorum());  // 0 and 3 accuse each other: one trusted poster of four
  a.addView(1, {3});
  EXPECT_TRUE(a.quorum());
  a.addView(2, {3});
  EXPECT_TRUE(a.awaited().empty());
  EXPECT_EQ(a.decide(), (std::set<int>{3}));
}

TEST(FailureAgreement, TwoRanksThatOnlyNameEachOtherLoseTheHigherOne) {
  FailureAgreement a(4);
  a.addView(0, {});
  a.addView(1, {2});
  a.addView(2, {1});
  a.addView(3, {});
  EXPECT_EQ(a.decide(), (std::set<int>{2}));
}

TEST(FailureAgreement, ViewsNamingThemselvesOrStrangersAreIgnored) {
  FailureAgreement a(2);
  a.addView(0, {0, 7, -1});
  a.addView(9, {1});  // not a rank
  EXPECT_EQ(a.awaited(), (std::vector<int>{1}));
}

TEST(RecoveryDecision, RoundTripsAndRenumbersSurvivorsInOrder) {
  RecoveryDecision d{9, {1, 3}};
  EXPECT_EQ(d.encode(), "epoch=9;failed=1,3");
  auto back = RecoveryDecision::decode(d.encode());
  EXPECT_EQ(back.epoch, 9u);
  EXPECT_EQ(back.failed, d.failed);
  EXPECT_EQ(d.oldToNew(5), (std::vector<int>{0, -1, 1, -1, 2}));
  EXPECT_EQ(RecoveryDecision::decode("epoch=2;failed=").failed.size(), 0u);
}

TEST(RecoveryDecision, GarbageIsAProtocolError) {
  for (const char* bad : {"", "epoch=;failed=1", "epoch=1", "epoch=x;failed=1", "epoch=1;failed=1,,2", "epoch=1;failed=a"}) {
    try {
      RecoveryDecision::decode(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kProtocol) << bad;
    }
  }
}

}  // namespace
}  // namespace eccl
