// LivenessTable: the heartbeat monitor's bookkeeping, on a fake clock.
#include <gtest/gtest.h>

#include "transport/liveness/liveness_table.h"

namespace eccl::transport {
namespace {

const Clock::time_point t0{};
constexpr Millis kTimeout(1000);

TEST(LivenessTable, APeerSilentLongerThanTheTimeoutIsSilentAndNoOneElse) {
  LivenessTable t(4, 1, kTimeout, t0);
  EXPECT_TRUE(t.silentPeers(t0 + Millis(1000)).empty());  // exactly the timeout: not yet
  t.heard(0, t0 + Millis(900));
  t.heard(3, t0 + Millis(500));
  EXPECT_EQ(t.silentPeers(t0 + Millis(1400)), (std::vector<int>{2}));  // self (1) never
  EXPECT_EQ(t.silentPeers(t0 + Millis(1600)), (std::vector<int>{2, 3}));
  t.heard(3, t0 + Millis(100));  // an older time does not move it back
  EXPECT_EQ(t.silentPeers(t0 + Millis(1600)), (std::vector<int>{2, 3}));
}

TEST(LivenessTable, FailedAndDepartedPeersAreNotReportedSilentAgain) {
  LivenessTable t(3, 0, kTimeout, t0);
  EXPECT_TRUE(t.fail(1, "first"));
  EXPECT_FALSE(t.fail(1, "second"));
  EXPECT_EQ(t.failures().at(1), "first");
  t.left(2);
  EXPECT_TRUE(t.silentPeers(t0 + Millis(5000)).empty());
  EXPECT_FALSE(t.fail(0, "self"));  // a rank never fails itself
  EXPECT_FALSE(t.failed(0));
}

TEST(LivenessTable, ZeroTimeoutChecksNoSilence) {
  LivenessTable t(2, 0, Millis(0), t0);
  EXPECT_TRUE(t.silentPeers(t0 + std::chrono::hours(1)).empty());
}

}  // namespace
}  // namespace eccl::transport
