#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "apps/common/local_ranks.h"
#include "tests/transport/expect_error.h"
#include "tests/transport/local_group.h"
#include "base/error.h"

namespace eccl::transport {
namespace {

using eccl::testing::socketGroup;
using eccl::testing::pattern;
using eccl::testing::expectError;
using eccl::testing::kLong;

class SocketTransportSizes : public ::testing::TestWithParam<size_t> {};
INSTANTIATE_TEST_SUITE_P(Bytes, SocketTransportSizes,
                         ::testing::Values(0, 1, 4095, (1u << 20) + 3, 64u << 20));

TEST_P(SocketTransportSizes, BothOrdersDeliverExactBytes) {
  const size_t n = GetParam();
  auto g = socketGroup(2, {.nsocks = 3});
  auto a = pattern(n, 1), b = pattern(n, 2);
  std::vector<uint8_t> ra(n), rb(n);
  // Receive posted before the send (direct into the buffer) and after it (staged when small,
  // announced and sent on the receiver's go-ahead when large).
  auto r1 = g[1]->irecv(0, 5, rb.data(), n);
  auto s1 = g[0]->isend(1, 5, a.data(), n);
  auto s2 = g[1]->isend(0, 6, b.data(), n);
  std::this_thread::sleep_for(Millis(n > (1 << 20) ? 100 : 5));
  auto r2 = g[0]->irecv(1, 6, ra.data(), n);
  for (auto& r : {r1, s1, s2, r2}) r->wait(kLong());
  EXPECT_TRUE(rb == a);
  EXPECT_TRUE(ra == b);
}

// Tiny socket buffers and the kernel's autotuned ones carry a striped large message alike; a bad
// size (option or $ECCL_SOCKET_BUFFER_BYTES) is refused naming the variable.
TEST(SocketTransport, SocketBufferSizesCarryLargeMessagesAndBadOnesAreRefused) {
  for (long long bytes : {0LL, 262144LL}) {
    SCOPED_TRACE("bufferBytes " + std::to_string(bytes));
    auto g = socketGroup(2, {.nsocks = 2, .bufferBytes = bytes});
    const size_t n = (size_t(4) << 20) + 5;
    auto a = pattern(n, 3);
    std::vector<uint8_t> got(n);
    auto r = g[1]->irecv(0, 1, got.data(), n);
    g[0]->isend(1, 1, a.data(), n)->wait(kLong());
    r->wait(kLong());
    EXPECT_TRUE(got == a);
  }
  struct UnsetAtEnd {
    ~UnsetAtEnd() { ::unsetenv("ECCL_SOCKET_BUFFER_BYTES"); }
  } unsetAtEnd;
  for (const char* bad : {"-5", "4096", "2147483648"}) {
    ::setenv("ECCL_SOCKET_BUFFER_BYTES", bad, 1);
    try {
      createSocketTransport({"buf", 0, 0, 1}, {.host = "127.0.0.1"});
      ADD_FAILURE() << "accepted ECCL_SOCKET_BUFFER_BYTES=" << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("ECCL_SOCKET_BUFFER_BYTES"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
    ::unsetenv("ECCL_SOCKET_BUFFER_BYTES");
  }
}

TEST(SocketTransport, StagingBudgetPausesThenResumes) {
  // Every message eager (no rendezvous), so these large ones are staged until the budget runs out.
  auto g = socketGroup(2, {.nsocks = 2, .unexpectedBudget = 1 << 20, .rendezvousBytes = 1ll << 40});
  auto big = pattern(16 << 20, 3);
  std::vector<RequestPtr> sends;
  for (int i = 0; i < 3; ++i) sends.push_back(g[0]->isend(1, i, big.data(), big.size()));
  std::this_thread::sleep_for(Millis(200));  // far more than the budget is now waiting
  std::vector<std::vector<uint8_t>> out(3, std::vector<uint8_t>(big.size()));
  std::vector<RequestPtr> recvs;
  for (int i = 2; i >= 0; --i) recvs.push_back(g[1]->irecv(0, i, out[i].data(), out[i].size()));
  for (auto& r : recvs) r->wait(kLong());
  for (auto& s : sends) s->wait(kLong());
  for (auto& o : out) EXPECT_TRUE(o == big);
}

TEST(SocketTransport, LargeMessagesWaitForTheirReceiveInsteadOfStaging) {
  // No staging budget at all: an eager message with no receive would stop its socket, so the
  // receive for the last message could never complete before the others are posted.
  auto g = socketGroup(2, {.nsocks = 2, .unexpectedBudget = 0});
  std::vector<std::vector<uint8_t>> in, out(3);
  std::vector<RequestPtr> sends;
  for (int i = 0; i < 3; ++i) in.push_back(pattern((1 << 20) + i, 10 + i));
  for (int i = 0; i < 3; ++i) sends.push_back(g[0]->isend(1, i, in[i].data(), in[i].size()));
  std::this_thread::sleep_for(Millis(50));
  for (int i = 2; i >= 0; --i) {
    out[i].resize(in[i].size());
    g[1]->irecv(0, i, out[i].data(), out[i].size())->wait(Deadline::after(std::chrono::seconds(30)));
    EXPECT_TRUE(out[i] == in[i]) << "message " << i;
  }
  for (auto& s : sends) s->wait(kLong());
}

TEST(SocketTransport, LargeSizeMismatchesFailTheReceiveAndKeepTheStream) {
  auto g = socketGroup(2);
  auto big = pattern(1 << 20, 6), bigger = pattern(2 << 20, 7), small = pattern(100, 8);
  std::vector<uint8_t> r(1 << 20), rs(100);
  struct Case {
    const char* name;
    std::vector<uint8_t>* recv;
    std::vector<uint8_t>* send;
    bool recvFirst;
  };
  for (auto c : {Case{"large receive, larger send", &r, &bigger, true}, Case{"small receive, large send", &rs, &big, false},
                 Case{"small receive first, large send", &rs, &big, true}, Case{"large receive, small send", &r, &small, true}}) {
    SCOPED_TRACE(c.name);
    RequestPtr recv, send;
    if (c.recvFirst) recv = g[1]->irecv(0, 3, c.recv->data(), c.recv->size());
    send = g[0]->isend(1, 3, c.send->data(), c.send->size());
    if (!c.recvFirst) {
      std::this_thread::sleep_for(Millis(20));
      recv = g[1]->irecv(0, 3, c.recv->data(), c.recv->size());
    }
    expectError(recv, kLong(), {std::to_string(c.send->size()) + " bytes", "size mismatch", "rank 0"});
    send->wait(kLong());
    // The next message on the same tag matches the next receive.
    auto next = g[1]->irecv(0, 3, r.data(), r.size());
    g[0]->isend(1, 3, big.data(), big.size())->wait(kLong());
    next->wait(kLong());
    EXPECT_TRUE(r == big);
  }
}

TEST(SocketTransport, TimedOutLargeReceiveDropsItsMessage) {
  auto g = socketGroup(2);
  std::vector<uint8_t> buf(1 << 20);
  expectError(g[1]->irecv(0, 9, buf.data(), buf.size()), Deadline::after(Millis(100)), {"timed out", "rank 0"});
  auto first = pattern(buf.size(), 1), second = pattern(buf.size(), 2);
  g[0]->isend(1, 9, first.data(), first.size())->wait(kLong());  // granted, then dropped
  auto s = g[0]->isend(1, 9, second.data(), second.size());
  g[1]->irecv(0, 9, buf.data(), buf.size())->wait(kLong());
  s->wait(kLong());
  EXPECT_TRUE(buf == second);
}

TEST(SocketTransport, DestroyWhileAnotherThreadWaits) {
  // The waiter polls the transport's sockets itself; destroying the transport under it must
  // fail its request, not pull the sockets from under its feet.
  for (int round = 0; round < 20; ++round) {
    auto g = socketGroup(2);
    std::vector<uint8_t> buf(64);
    auto r = g[1]->irecv(0, 1, buf.data(), buf.size());
    std::thread waiter([&] { expectError(r, kLong(), {"destroyed"}); });
    std::this_thread::sleep_for(std::chrono::microseconds(100 * round));
    g[1].reset();
    waiter.join();
  }
}

TEST(SocketTransport, SelfSendAndSizeMismatch) {
  auto g = socketGroup(2);
  auto a = pattern(1000, 4);
  std::vector<uint8_t> r(1000), small(10);
  auto s = g[0]->isend(0, 1, a.data(), a.size());
  g[0]->irecv(0, 1, r.data(), r.size())->wait(kLong());
  s->wait(kLong());
  EXPECT_TRUE(r == a);
  auto recv = g[1]->irecv(0, 2, small.data(), small.size());
  g[0]->isend(1, 2, a.data(), a.size())->wait(kLong());
  expectError(recv, kLong(), {"1000 bytes", "size mismatch", "rank 0"});
  // The stream stays usable after the mismatch.
  auto next = g[1]->irecv(0, 2, r.data(), r.size());
  g[0]->isend(1, 2, a.data(), a.size())->wait(kLong());
  next->wait(kLong());
  EXPECT_TRUE(r == a);
}

TEST(SocketTransport, TimeoutNamesThePeerAndCancelKeepsMatching) {
  auto g = socketGroup(2);
  std::vector<uint8_t> buf(64);
  auto r = g[1]->irecv(0, 9, buf.data(), buf.size());
  auto t0 = Clock::now();
  expectError(r, Deadline::after(Millis(200)), {"timed out", "rank 0", "tag 9", "64 bytes"});
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  // The cancelled receive consumed its slot: the first message on tag 9 is discarded, the
  // second goes to the next receive.
  auto first = pattern(64, 1), second = pattern(64, 2);
  g[0]->isend(1, 9, first.data(), 64)->wait(kLong());
  g[0]->isend(1, 9, second.data(), 64)->wait(kLong());
  g[1]->irecv(0, 9, buf.data(), buf.size())->wait(kLong());
  EXPECT_TRUE(buf == second);
}

TEST(SocketTransport, AbortFailsPendingOpsOnEveryRank) {
  auto g = socketGroup(3);
  std::vector<uint8_t> b1(8), b2(8);
  auto r1 = g[1]->irecv(2, 1, b1.data(), 8);
  auto r2 = g[2]->irecv(1, 1, b2.data(), 8);
  g[0]->abort("operator asked");
  expectError(r1, kLong(), {"rank 0", "operator asked"});
  expectError(r2, kLong(), {"rank 0", "operator asked"});
  EXPECT_TRUE(g[1]->asyncError().has_value());
  auto late = g[1]->isend(2, 3, b1.data(), 8);
  expectError(late, kLong(), {"operator asked"});
}

TEST(SocketTransport, WrongGroupOrEpochIsRefusedNamingBoth) {
  auto a = createSocketTransport({"grp", 1, 0, 2}, {.host = "127.0.0.1", .nsocks = 1});
  auto b = createSocketTransport({"grp", 2, 1, 2}, {.host = "127.0.0.1", .nsocks = 1});
  std::vector<AddressBlob> addrs{a->address(), b->address()};
  std::thread acceptor([&] { EXPECT_THROW(a->connect(addrs, Deadline::after(Millis(1500))), Error); });
  try {
    b->connect(addrs, Deadline::after(Millis(5000)));
    ADD_FAILURE() << "connected across epochs";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("epoch 1"), std::string::npos) << m;
    EXPECT_NE(m.find("epoch 2"), std::string::npos) << m;
    EXPECT_NE(m.find("refused"), std::string::npos) << m;
  }
  acceptor.join();
}

TEST(SocketTransport, Ipv6AndDestroyWithPendingOps) {
  auto g = socketGroup(2, {.host = "::1"});
  EXPECT_NE(g[0]->peerAddress(1).find("[::1]"), std::string::npos);
  auto a = pattern(1 << 20, 5);
  std::vector<uint8_t> r(1 << 20);
  auto rr = g[1]->irecv(0, 1, r.data(), r.size());
  g[0]->isend(1, 1, a.data(), a.size())->wait(kLong());
  rr->wait(kLong());
  EXPECT_TRUE(r == a);
  auto pending = g[1]->irecv(0, 2, r.data(), r.size());
  g[1].reset();  // destroy with a receive pending: it fails, nothing hangs
  expectError(pending, kLong(), {"destroyed"});
}

TEST(SocketTransport, KilledPeerFailsPendingOpsNamingIt) {
  // Rank 1 lives in a child process and is killed while rank 0 waits for it. The child is
  // forked before rank 0 starts its threads (forking a threaded process is unsafe, and
  // ThreadSanitizer's child hung here); the addresses cross over two pipes.
  int pipeFd[2], backFd[2];
  ASSERT_EQ(::pipe(pipeFd), 0);
  ASSERT_EQ(::pipe(backFd), 0);
  pid_t child = forkChild([&] {
    auto t1 = createSocketTransport({"kill", 0, 1, 2}, {.host = "127.0.0.1"});
    auto a1 = t1->address();
    uint32_t len = a1.size();
    [[maybe_unused]] auto w1 = ::write(pipeFd[1], &len, 4);
    [[maybe_unused]] auto w2 = ::write(pipeFd[1], a1.data(), len);
    uint32_t len0 = 0;
    if (::read(backFd[0], &len0, 4) != 4) return 1;
    AddressBlob a0(len0);
    if (::read(backFd[0], a0.data(), len0) != ssize_t(len0)) return 1;
    t1->connect({a0, a1}, Deadline::after(std::chrono::seconds(30)));
    ::pause();
    return 0;
  });
  auto t0 = createSocketTransport({"kill", 0, 0, 2}, {.host = "127.0.0.1"});
  auto addr0 = t0->address();
  uint32_t len0 = addr0.size();
  ASSERT_EQ(::write(backFd[1], &len0, 4), 4);
  ASSERT_EQ(::write(backFd[1], addr0.data(), len0), ssize_t(len0));
  uint32_t len = 0;
  ASSERT_EQ(::read(pipeFd[0], &len, 4), 4);
  AddressBlob a1(len);
  ASSERT_EQ(::read(pipeFd[0], a1.data(), len), ssize_t(len));
  t0->connect({addr0, a1}, Deadline::after(std::chrono::seconds(30)));
  std::vector<uint8_t> buf(16);
  auto r = t0->irecv(1, 1, buf.data(), buf.size());
  auto big = pattern(1 << 20, 1);
  auto s = t0->isend(1, 2, big.data(), big.size());  // large: waits for rank 1's go-ahead
  ::kill(child, SIGKILL);
  auto start = Clock::now();
  std::string addr1(a1.begin(), a1.end());
  expectError(r, Deadline::after(std::chrono::seconds(30)), {"rank 1", addr1, "closed its connection"});
  expectError(s, Deadline::after(std::chrono::seconds(30)), {"send of 1048576 bytes", "rank 1", "closed its connection"});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  reapChild(child, std::chrono::seconds(10));
}

}  // namespace
}  // namespace eccl::transport
