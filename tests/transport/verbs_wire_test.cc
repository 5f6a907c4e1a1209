// The verbs transport's credit bookkeeping (pure logic; the transport is tested in the VM).
#include <gtest/gtest.h>

#include "transport/ibverbs/verbs_wire.h"

namespace eccl::transport::verbs {
namespace {

TEST(CreditLedger, EagerDataLeavesTheReserveToControlMessages) {
  CreditLedger c(8, 2);
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
  CreditLedger c(8, 2);
  for (int i = 0; i < 4; ++i) c.sent();
  c.returned(3);
  c.returned(1);  // an older count (a credit write overtaken by a header) changes nothing
  EXPECT_EQ(c.unreturned(), 1u);
  c.returned(9);  // more than was ever sent: ignored rather than trusted
  EXPECT_EQ(c.unreturned(), 1u);
}

TEST(CreditLedger, AWriteIsOwedOnceHalfTheBuffersWaitToBeReported) {
  CreditLedger c(8, 2);
  for (int i = 0; i < 3; ++i) c.freed();
  EXPECT_FALSE(c.owesWrite());
  c.freed();
  EXPECT_TRUE(c.owesWrite());
  EXPECT_EQ(c.report(), 4u);  // a header carried the count: nothing owed any more
  EXPECT_FALSE(c.owesWrite());
}

TEST(CreditLedger, AReserveAsLargeAsTheLimitIsDropped) {
  CreditLedger c(2, 2);  // (a tiny limit would otherwise never let eager data go)
  EXPECT_TRUE(c.canSend(false));
}

}  // namespace
}  // namespace eccl::transport::verbs
