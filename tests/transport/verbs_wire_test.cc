// The verbs transport's credit bookkeeping (pure logic; the transport is tested in the VM).
#include <gtest/gtest.h>

#include "transport/ibverbs/verbs_wire.h"

namespace eccl::transport::verbs {
namespace {

TEST(CreditLedger, EagerDataLeavesTheReserveToControlMessages) {
  CreditLedger c(8, 8, 2);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c.canSend(false)) << i;
    c.sent();
  }
  EXPECT_FALSE(c.canSend(false));  // 6 unreturned: the last 2 are for control messages
  EXPECT_TRUE(c.canSend(true));
  c.sent();
  c.sent();
  EXPECT_FALSE(c.canSend(true));  // all 8 of the peer's buffers hold our messages
  c.returned(3);
  EXPECT_EQ(c.unreturned(), 5u);
  EXPECT_TRUE(c.canSend(false));
}

TEST(CreditLedger, ReturnedCountsOnlyGrowAndNeverPassWhatWasSent) {
  CreditLedger c(8, 8, 2);
  for (int i = 0; i < 4; ++i) c.sent();
  c.returned(3);
  c.returned(1);  // an older count (a credit write overtaken by a header) changes nothing
  EXPECT_EQ(c.unreturned(), 1u);
  c.returned(9);  // more than was ever sent: ignored rather than trusted
  EXPECT_EQ(c.unreturned(), 1u);
}

TEST(CreditLedger, AWriteIsOwedOnceHalfTheBuffersWaitToBeReported) {
  CreditLedger c(8, 8, 2);
  for (int i = 0; i < 3; ++i) c.freed();
  EXPECT_FALSE(c.owesWrite(0));
  c.freed();
  EXPECT_TRUE(c.owesWrite(0));
  EXPECT_EQ(c.report(), 4u);  // a header carried the count: nothing owed any more
  EXPECT_FALSE(c.owesWrite(0));
}

// The peer sent 6 eager messages (all its eager credits); 5 are held for receives not posted
// yet and 1 was freed. That one credit must go back now: the peer may be waiting for it to send
// the very message this rank waits for.
TEST(CreditLedger, AFreedBufferIsReturnedAtOnceWhenThePeerMayBeOutOfCredits) {
  CreditLedger c(8, 8, 2);
  c.freed();
  EXPECT_FALSE(c.owesWrite(4));
  EXPECT_TRUE(c.owesWrite(5));
  c.report();
  EXPECT_FALSE(c.owesWrite(5));  // nothing freed since: nothing to return
}

TEST(CreditLedger, EachSideUsesThePeersLimitToSendAndItsOwnToReturn) {
  CreditLedger c(4, 16, 2);  // the peer keeps 4 buffers for us; we keep 16 for it
  c.sent();
  c.sent();
  EXPECT_FALSE(c.canSend(false));
  EXPECT_TRUE(c.canSend(true));
  for (int i = 0; i < 7; ++i) c.freed();
  EXPECT_FALSE(c.owesWrite(0));  // half of our 16 is 8
  c.freed();
  EXPECT_TRUE(c.owesWrite(0));
}

TEST(CreditLedger, AReserveAsLargeAsTheLimitIsDropped) {
  CreditLedger c(2, 2, 2);  // (a tiny limit would otherwise never let eager data go)
  EXPECT_TRUE(c.canSend(false));
}

}  // namespace
}  // namespace eccl::transport::verbs
