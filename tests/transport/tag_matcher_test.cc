// TagMatcher: numbering, posting, unexpected messages and their budget, withdrawal; no I/O.
#include "transport/tag_matcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace eccl::transport {
namespace {

using Recv = std::shared_ptr<int>;
using Matcher = TagMatcher<Recv>;

TEST(TagMatcher, NumbersEachTagAndPeerIndependently) {
  Matcher m(3, 1024);
  EXPECT_EQ(m.numberSend(1, 7), (MessageKey{7, 0}));
  EXPECT_EQ(m.numberSend(1, 7), (MessageKey{7, 1}));
  EXPECT_EQ(m.numberSend(1, 8), (MessageKey{8, 0}));
  EXPECT_EQ(m.numberSend(2, 7), (MessageKey{7, 0}));
  EXPECT_EQ(m.numberReceive(1, 7), (MessageKey{7, 0}));  // receives count apart from sends
  EXPECT_TRUE(m.receiveNumbered(1, {7, 0}));
  EXPECT_FALSE(m.receiveNumbered(1, {7, 1}));
  EXPECT_FALSE(m.receiveNumbered(2, {7, 0}));
  EXPECT_TRUE(m.sendNumbered(1, {7, 1}));
  EXPECT_FALSE(m.sendNumbered(1, {7, 2}));
  EXPECT_FALSE(m.sendNumbered(0, {9, 0}));
}

TEST(TagMatcher, PostedReceivesAreFoundByKeyAndRemovedOnce) {
  Matcher m(2, 1024);
  auto r = std::make_shared<int>(5);
  const MessageKey k = m.numberReceive(1, 3);
  EXPECT_EQ(m.posted(1, k), nullptr);
  m.post(1, k, r);
  ASSERT_NE(m.posted(1, k), nullptr);
  EXPECT_EQ(*m.posted(1, k), r);
  EXPECT_EQ(m.posted(0, k), nullptr);  // another peer
  EXPECT_TRUE(m.anyPosted(1));
  EXPECT_EQ(m.unpost(1, k), r);
  EXPECT_EQ(m.unpost(1, k), nullptr);
  EXPECT_FALSE(m.anyPosted(1));
}

// Matched receives leave their map nodes for later posts (of any peer): keys and receives must
// never leak from one use of a node to the next, and posting a key twice replaces, as before.
TEST(TagMatcher, RecycledNodesKeepPeersKeysAndReceivesApart) {
  Matcher m(3, 1024);
  for (int round = 0; round < 200; ++round) {
    const int peer = round % 3;
    std::vector<std::pair<MessageKey, Recv>> batch;
    for (int i = 0; i < 1 + round % 70; ++i) {  // past the number of spare nodes kept, at times
      batch.emplace_back(m.numberReceive(peer, i % 4), std::make_shared<int>(round * 100 + i));
      m.post(peer, batch.back().first, batch.back().second);
    }
    for (int other = 0; other < 3; ++other)
      if (other != peer) {
        EXPECT_FALSE(m.anyPosted(other));
      }
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {  // (matched in another order)
      ASSERT_NE(m.posted(peer, it->first), nullptr);
      EXPECT_EQ(m.unpost(peer, it->first), it->second);
      EXPECT_EQ(m.posted(peer, it->first), nullptr);
    }
    EXPECT_FALSE(m.anyPosted(peer));
  }
  const MessageKey k = m.numberReceive(1, 9);
  auto first = std::make_shared<int>(1), second = std::make_shared<int>(2);
  m.post(1, k, first);
  m.post(1, k, second);  // replaces (a recycled node carries the second post)
  EXPECT_EQ(m.unpost(1, k), second);
  EXPECT_FALSE(m.anyPosted(1));
  EXPECT_EQ(first.use_count(), 1);  // the matcher holds nothing it was given
  EXPECT_EQ(second.use_count(), 1);
}

TEST(TagMatcher, UnexpectedMessagesAreHeldWithinTheBudget) {
  Matcher m(2, 100);
  auto* a = m.reserve(1, {1, 0}, 60);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->data.size(), 60u);
  EXPECT_EQ(m.heldBytes(), 60u);
  EXPECT_EQ(m.reserve(1, {1, 0}, 60), a);          // the same message again: no new space
  EXPECT_EQ(m.reserve(1, {1, 1}, 41), nullptr);    // over the budget: back-pressure
  EXPECT_EQ(m.reserve(0, {1, 1}, 101), nullptr);   // larger than the whole budget
  EXPECT_NE(m.reserve(1, {1, 2}, 0), nullptr);     // zero bytes always fit
  auto* b = m.reserve(1, {1, 1}, 40);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(m.heldBytes(), 100u);
  m.release(1, {1, 0});
  EXPECT_EQ(m.heldBytes(), 40u);
  EXPECT_EQ(m.unexpected(1, {1, 0}), nullptr);
  m.release(1, {1, 0});  // twice: harmless
  EXPECT_EQ(m.heldBytes(), 40u);
  EXPECT_NE(m.reserve(1, {1, 3}, 60), nullptr);  // freed space is usable again
}

TEST(TagMatcher, WithdrawDropsACompleteMessageNowAndAPartialOneWhenItCompletes) {
  Matcher m(2, 100);
  auto* whole = m.reserve(1, {1, 0}, 10);
  whole->received = 10;
  EXPECT_TRUE(m.withdraw(1, {1, 0}));
  EXPECT_EQ(m.unexpected(1, {1, 0}), nullptr);
  EXPECT_EQ(m.heldBytes(), 0u);

  auto* partial = m.reserve(1, {1, 1}, 10);
  partial->received = 4;
  partial->waiter = std::make_shared<int>(1);
  EXPECT_TRUE(m.withdraw(1, {1, 1}));
  ASSERT_NE(m.unexpected(1, {1, 1}), nullptr);
  EXPECT_TRUE(partial->orphan);
  EXPECT_EQ(partial->waiter, nullptr);
  EXPECT_EQ(m.heldBytes(), 10u);  // still arriving: its space stays taken until it is whole

  auto r = std::make_shared<int>(2);
  m.post(1, {1, 2}, r);
  EXPECT_FALSE(m.withdraw(1, {1, 2}));  // nothing had arrived for it
  EXPECT_EQ(m.posted(1, {1, 2}), nullptr);
}

TEST(TagMatcher, TakeWaitingReturnsPostedReceivesAndWaitersButKeepsData) {
  Matcher m(2, 100);
  auto r1 = std::make_shared<int>(1), r2 = std::make_shared<int>(2), r3 = std::make_shared<int>(3);
  m.post(1, {1, 0}, r1);
  m.post(0, {1, 0}, r3);
  auto* u = m.reserve(1, {2, 0}, 8);
  u->waiter = r2;
  auto waiting = m.takeWaiting(1);
  ASSERT_EQ(waiting.size(), 2u);
  EXPECT_EQ(waiting[0], r1);
  EXPECT_EQ(waiting[1], r2);
  EXPECT_FALSE(m.anyPosted(1));
  EXPECT_TRUE(m.anyPosted(0));  // other peers untouched
  ASSERT_NE(m.unexpected(1, {2, 0}), nullptr);
  EXPECT_EQ(m.unexpected(1, {2, 0})->waiter, nullptr);
  EXPECT_EQ(m.heldBytes(), 8u);
}

TEST(TagMatcher, UnknownPeerIsAnError) {
  Matcher m(2, 100);
  EXPECT_THROW(m.numberSend(2, 0), std::out_of_range);
  EXPECT_THROW(m.post(-1, {}, nullptr), std::out_of_range);
}

}  // namespace
}  // namespace eccl::transport
