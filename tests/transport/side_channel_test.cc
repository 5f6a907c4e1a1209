// SideChannel::breakFor: how a transport behind a side channel breaks on what a peer told it.
#include <gtest/gtest.h>

#include "transport/side_channel.h"

namespace eccl::transport {
namespace {

const GroupIdentity kId{"ep", 2, 1, 3};

// An abort heard from a peer is passed on, as a lost peer is: the aborting rank may be slow to
// reach the others, or die halfway through telling them, and a rank that sees us hang up first
// must still learn of the abort (the revoke in python/tests/test_recovery.py once saw rank 1
// exit before rank 0's abort came, and failed as if rank 1 had crashed).
TEST(SideChannelBreak, AnAbortFromAPeerIsRelayedAndNamesItAndItsReason) {
  auto b = SideChannel::breakFor({SideChannel::Event::kAborted, 0, "revoked by rank 0: engine decided"}, kId, "rank 0 (h:1)");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->code, ErrorCode::kAborted);
  EXPECT_TRUE(b->relay);
  EXPECT_EQ(b->reason, "group 'ep' epoch 2 rank 1 of 3: rank 0 (h:1) aborted the group: revoked by rank 0: engine decided");
}

TEST(SideChannelBreak, ALostPeerIsRelayedAsAClosedConnection) {
  auto b = SideChannel::breakFor({SideChannel::Event::kLost, 2, "closed its connection (did the process exit?)"}, kId, "rank 2 (h:3)");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->code, ErrorCode::kConnectionClosed);
  EXPECT_TRUE(b->relay);
  EXPECT_NE(b->reason.find("rank 2 (h:3) closed its connection"), std::string::npos) << b->reason;
}

TEST(SideChannelBreak, AGoodbyeOrASuspicionBreaksNothing) {
  EXPECT_FALSE(SideChannel::breakFor({SideChannel::Event::kLeft, 2, "closed its connection (did the process exit?)"}, kId, "rank 2"));
  EXPECT_FALSE(SideChannel::breakFor({SideChannel::Event::kSuspects, 0, "silent for 3 s", 2}, kId, "rank 0"));
}

}  // namespace
}  // namespace eccl::transport
