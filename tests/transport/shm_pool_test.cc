// The shared-memory transport's chunk pool (large messages pulled through the sender's pool):
// slots reused under load in any posting order, cancels from either side mid-stream, a peer
// killed mid-stream, a stopped receiver not starving the others, ranks with and without a pool,
// a send that completes once it is all in the pool, and bad settings. The conformance suite runs
// the rest over the pool (flavor shm) and over cross-memory attach alone (flavor shm_cma).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include <functional>
#include <stdexcept>
#include <thread>

#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "tests/transport/expect_error.h"
#include "tests/transport/local_group.h"

namespace eccl::transport {
namespace {

using eccl::testing::expectError;
using eccl::testing::kLong;
using eccl::testing::pattern;

// A pool of `slots` slots of `chunk` bytes.
TransportOptions pooled(size_t slots, size_t chunk) {
  return {.kind = "shm", .host = "127.0.0.1", .shm = {.poolBytes = slots * chunk, .chunkBytes = chunk}};
}

// Kills and reaps a child still running (or stopped) when the test ends early: a failed assertion
// leaves no stopped child behind. Set pid to -1 once the test reaped it itself.
struct ChildReaper {
  pid_t pid;
  ~ChildReaper() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    reapChild(pid, std::chrono::seconds(10));
  }
};

// Rank 0 in this process and rank 1 in a child, connected: `child` runs in the child with its
// transport and the pipe ends to and from this process (its result is the child's exit code).
// The child is killed and reaped if the test ends before reap().
struct PairWithAChild {
  int toParent[2] = {-1, -1}, toChild[2] = {-1, -1};
  pid_t pid = -1;
  std::unique_ptr<Transport> t0;
  PairWithAChild(const std::string& name, const TransportOptions& opts, const std::function<int(Transport&, int toParent, int fromParent)>& child) {
    if (::pipe(toParent) != 0 || ::pipe(toChild) != 0) throw std::runtime_error("pipe failed");
    pid = forkChild([&] {
      auto t1 = createTransport({name, 0, 1, 2}, opts);
      eccl::testing::writeBlob(toParent[1], t1->address());
      AddressBlob a0 = eccl::testing::readBlob(toChild[0]);
      t1->connect({a0, t1->address()}, Deadline::after(std::chrono::seconds(30)));
      return child(*t1, toParent[1], toChild[0]);
    });
    t0 = createTransport({name, 0, 0, 2}, opts);
    AddressBlob a1 = eccl::testing::readBlob(toParent[0]);
    if (a1.empty()) throw std::runtime_error("rank 1 sent no address");
    eccl::testing::writeBlob(toChild[1], t0->address());
    t0->connect({t0->address(), a1}, Deadline::after(std::chrono::seconds(30)));
  }
  AddressBlob readFromChild() { return eccl::testing::readBlob(toParent[0]); }
  // With the child stopped: small messages to it (tag 2, `bytes` each, pattern(bytes, i)) until
  // one waits for room in its ring. The messages stay alive with their requests.
  struct Filled {
    std::vector<std::vector<uint8_t>> messages;
    std::vector<RequestPtr> sent;
  };
  Filled fillChildRing(size_t bytes) {
    Filled f;
    while (f.sent.empty() || f.sent.back()->test()) {
      if (f.sent.size() >= 1000) throw std::runtime_error("rank 1's ring never filled");
      f.messages.push_back(pattern(bytes, static_cast<int>(f.sent.size())));
      f.sent.push_back(t0->isend(1, 2, f.messages.back().data(), bytes));
    }
    return f;
  }
  // Stops the child and returns once it is stopped: from then on its rings stay as they are.
  void stopChild() const {
    ::kill(pid, SIGSTOP);
    int status = 0;
    while (::waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR) {
    }
  }
  void writeToChild(const AddressBlob& b) { eccl::testing::writeBlob(toChild[1], b); }
  int reap() {
    const int code = reapChild(pid, std::chrono::seconds(60)).exitCode;
    pid = -1;
    return code;
  }
  ~PairWithAChild() {
    ChildReaper reaper{pid};  // (kills and reaps a child still there)
    for (int fd : {toParent[0], toParent[1], toChild[0], toChild[1]})
      if (fd >= 0) ::close(fd);
  }
};

// One exchange each way on a fresh tag: the pair still works and every slot came back (a one-slot
// pool moves nothing while a slot is lost).
void expectUsable(std::vector<std::unique_ptr<Transport>>& g, Tag tag) {
  for (int from : {0, 1}) {
    auto a = pattern(100000, tag + from);
    std::vector<uint8_t> got(a.size());
    auto r = g[1 - from]->irecv(from, tag, got.data(), got.size());
    g[from]->isend(1 - from, tag, a.data(), a.size())->wait(kLong());
    r->wait(kLong());
    EXPECT_TRUE(got == a) << "from rank " << from;
  }
}

TEST(ShmPool, MoreLargeMessagesThanSlotsArriveIntactInAnyPostingOrder) {
  for (size_t slots : {1, 4}) {
  SCOPED_TRACE(std::to_string(slots) + " slots");
  auto g = eccl::testing::localTransports(2, pooled(slots, 16384), "pool-many-" + std::to_string(slots));
  const int count = 12;
  std::vector<std::vector<uint8_t>> sent[2], got[2];
  std::vector<RequestPtr> reqs;
  for (int from : {0, 1})
    for (int i = 0; i < count; ++i) {
      sent[from].push_back(pattern(100000 + 4096 * i + from, 10 * i + from));
      got[from].emplace_back(sent[from].back().size());
      reqs.push_back(g[from]->isend(1 - from, i, sent[from][i].data(), sent[from][i].size()));
    }
  // Receives posted last and in reverse: every message waits, announced, and the pool is only
  // used by the one whose receive is posted.
  for (int i = count; i-- > 0;)
    for (int from : {0, 1}) reqs.push_back(g[1 - from]->irecv(from, i, got[from][i].data(), got[from][i].size()));
  for (auto& r : reqs) r->wait(kLong());
  for (int from : {0, 1})
    for (int i = 0; i < count; ++i) EXPECT_TRUE(got[from][i] == sent[from][i]) << "message " << i << " from rank " << from;
  expectUsable(g, 100);
  }
}

TEST(ShmPool, ReceiveCancelledWhileBeingPulledIsLeftAloneAndTheSendCompletes) {
  // One 4 KiB slot: a 64 MiB message takes 16384 round trips, so a cancel after a few ms lands
  // in the middle of it (or, on a slow machine, before it started; both must hold what follows).
  auto g = eccl::testing::localTransports(2, pooled(1, 4096), "pool-cancel-recv");
  const size_t n = size_t(64) << 20;
  auto a = pattern(n, 3);
  std::vector<uint8_t> got(n);
  auto r = g[1]->irecv(0, 1, got.data(), got.size());
  auto s = g[0]->isend(1, 1, a.data(), a.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r->cancel();
  expectError(r, kLong(), {"cancelled"});
  const std::vector<uint8_t> snapshot = got;
  s->wait(kLong());  // the receiver drops the rest and lets the sender go
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(got == snapshot) << "the cancelled receive's buffer was written after cancel() returned";
  expectUsable(g, 2);
}

TEST(ShmPool, AReceiveCancelledBeforeItsMessageCameDropsItAndTheSendCompletes) {
  // A large receive posted first tells the sender to stream the message as soon as it is sent
  // (kGrant); cancelled before that, the chunks that come anyway are dropped and the slots return.
  auto g = eccl::testing::localTransports(2, pooled(1, 4096), "pool-grant-cancel");
  const size_t n = size_t(1) << 20;
  std::vector<uint8_t> got(n);
  auto r = g[1]->irecv(0, 1, got.data(), n);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the grant reaches rank 0
  r->cancel();
  expectError(r, kLong(), {"cancelled"});
  auto a = pattern(n, 9);
  g[0]->isend(1, 1, a.data(), n)->wait(kLong());
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  expectUsable(g, 2);
}

TEST(ShmPool, SendCancelledWhileBeingPulledFailsTheReceiveNamingTheSender) {
  auto g = eccl::testing::localTransports(2, pooled(1, 4096), "pool-cancel-send");
  const size_t n = size_t(64) << 20;
  std::vector<uint8_t> a(n, 0x11), got(n);
  auto r = g[1]->irecv(0, 1, got.data(), got.size());
  auto s = g[0]->isend(1, 1, a.data(), a.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s->cancel();  // returns once the receiver agreed: the buffer is the caller's again
  a.assign(n, 0xEE);
  expectError(s, kLong(), {"cancelled"});
  expectError(r, kLong(), {"rank 0", "cancelled"});
  // What arrived is a prefix of the message (chunks come in order), and nothing after.
  const size_t copied = std::find(got.begin(), got.end(), uint8_t(0)) - got.begin();
  EXPECT_TRUE(std::all_of(got.begin(), got.begin() + copied, [](uint8_t b) { return b == 0x11; }));
  EXPECT_TRUE(std::all_of(got.begin() + copied, got.end(), [](uint8_t b) { return b == 0; }))
      << "bytes copied after the sender's cancel returned, or out of order";
  expectUsable(g, 2);
}

TEST(ShmPool, RanksWithAndWithoutAPoolExchangeLargeMessages) {
  // Rank 0 has no pool (its receivers copy from it by cross-memory attach); rank 1 has one.
  std::vector<std::unique_ptr<Transport>> g;
  g.push_back(createTransport({"pool-mixed", 0, 0, 2}, {.kind = "shm", .host = "127.0.0.1", .shm = {.poolBytes = 0}}));
  g.push_back(createTransport({"pool-mixed", 0, 1, 2}, pooled(2, 65536)));
  eccl::testing::connectAll(g);
  expectUsable(g, 1);
  for (size_t n : {size_t(8193), size_t(1) << 20, (size_t(3) << 20) + 5}) {
    auto a = pattern(n, 7), b = pattern(n, 8);
    std::vector<uint8_t> ga(n), gb(n);
    auto r0 = g[0]->irecv(1, 9, gb.data(), n);
    auto r1 = g[1]->irecv(0, 9, ga.data(), n);
    auto s0 = g[0]->isend(1, 9, a.data(), n);
    auto s1 = g[1]->isend(0, 9, b.data(), n);
    for (auto& r : {r0, r1, s0, s1}) r->wait(kLong());
    EXPECT_TRUE(ga == a) << n;
    EXPECT_TRUE(gb == b) << n;
  }
}

TEST(ShmPool, PeerKilledWhileBeingPulledFailsTheOtherSideNamingIt) {
  // Rank 1, in a child, receives a long message through rank 0's one-slot pool — or sends one
  // through its own, pulled by rank 0 — and is killed in the middle: rank 0's send (or receive)
  // fails fast naming rank 1.
  for (bool parentSends : {true, false}) {
    SCOPED_TRACE(parentSends ? "the killed rank was receiving" : "the killed rank was sending");
    int toParent[2], toChild[2];
    ASSERT_EQ(::pipe(toParent), 0);
    ASSERT_EQ(::pipe(toChild), 0);
    const TransportOptions opts = pooled(1, 4096);
    const size_t n = size_t(256) << 20;
    const std::string name = parentSends ? "pool-kill-a" : "pool-kill-b";
    pid_t child = forkChild([&] {
      auto t1 = createTransport({name, 0, 1, 2}, opts);
      eccl::testing::writeBlob(toParent[1], t1->address());
      AddressBlob a0 = eccl::testing::readBlob(toChild[0]);
      t1->connect({a0, t1->address()}, Deadline::after(std::chrono::seconds(30)));
      std::vector<uint8_t> buf(n, 1);
      auto op = parentSends ? t1->irecv(0, 1, buf.data(), n) : t1->isend(0, 1, buf.data(), n);
      ::pause();
      return 0;
    });
    auto t0 = createTransport({name, 0, 0, 2}, opts);
    AddressBlob a1 = eccl::testing::readBlob(toParent[0]);
    ASSERT_FALSE(a1.empty());
    eccl::testing::writeBlob(toChild[1], t0->address());
    t0->connect({t0->address(), a1}, Deadline::after(std::chrono::seconds(30)));
    std::vector<uint8_t> buf(n, 2);
    auto op = parentSends ? t0->isend(1, 1, buf.data(), n) : t0->irecv(1, 1, buf.data(), n);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(child, SIGKILL);
    const auto start = Clock::now();
    expectError(op, Deadline::after(std::chrono::seconds(30)), {"of 268435456 bytes", "rank 1"});
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    reapChild(child, std::chrono::seconds(10));
    for (int fd : {toParent[0], toParent[1], toChild[0], toChild[1]}) ::close(fd);
  }
}

// A send whose chunks are all in the pool completes at once: its buffer is the caller's again
// (as a buffered send's), and the receiver still gets what was sent. Rank 1 (a child) posts the
// receive and is stopped (SIGSTOP) before it reads a chunk; rank 0's send must not wait for it.
TEST(ShmPool, ASendCompletesOnceAllOfItIsInThePool) {
  const TransportOptions opts = pooled(16, 65536);  // 1 MiB: a 256 KiB message takes 4 slots of the 8 a peer may hold
  const size_t n = size_t(256) << 10;
  PairWithAChild pair("pool-early", opts, [&](Transport& t1, int toParent, int) {
    std::vector<uint8_t> buf(n);
    auto r = t1.irecv(0, 1, buf.data(), n);  // (its grant is in rank 0's ring once this returns)
    eccl::testing::writeBlob(toParent, AddressBlob{1});
    r->wait(Deadline::after(std::chrono::seconds(120)));
    return buf == pattern(n, 5) ? 0 : 3;
  });
  ASSERT_FALSE(pair.readFromChild().empty());  // rank 1 posted its receive
  pair.stopChild();
  std::vector<uint8_t> a = pattern(n, 5);
  auto s = pair.t0->isend(1, 1, a.data(), n);
  s->wait(Deadline::after(std::chrono::seconds(20)));  // (rank 1 reads nothing while stopped)
  a.assign(n, 0xEE);  // the buffer is ours again
  ::kill(pair.pid, SIGCONT);
  EXPECT_EQ(pair.reap(), 0) << "rank 1 received what was sent, not what the buffer held later";
}

// The other half of that promise: a send is complete only once its last chunk's record is in the
// receiver's ring too, so it survives its sender's going away. Rank 1 (a child) posts a large
// receive and is stopped; rank 0 fills its ring with small messages, then sends the large one:
// its chunks are in the pool but their records wait for room, and the send waits with them.
// Once rank 1 runs again, the send completes, rank 0 leaves at once, and rank 1 gets it all.
TEST(ShmPool, ASendWhoseLastChunkWaitsForRingRoomCompletesOnlyOnceWritten) {
  TransportOptions opts = pooled(16, 65536);
  opts.shm.ringBytes = 16384;
  opts.shm.eagerBytes = 2048;
  const size_t n = size_t(256) << 10, small = 1500;
  PairWithAChild pair("pool-ring", opts, [&](Transport& t1, int toParent, int fromParent) {
    std::vector<uint8_t> big(n);
    auto r = t1.irecv(0, 1, big.data(), n);
    eccl::testing::writeBlob(toParent, AddressBlob{1});
    const size_t count = eccl::testing::readBlob(fromParent).size();  // (read once running again)
    std::vector<std::vector<uint8_t>> got(count, std::vector<uint8_t>(small));
    for (size_t i = 0; i < count; ++i) t1.irecv(0, 2, got[i].data(), small)->wait(Deadline::after(std::chrono::seconds(60)));
    r->wait(Deadline::after(std::chrono::seconds(60)));
    for (size_t i = 0; i < count; ++i)
      if (got[i] != pattern(small, static_cast<int>(i))) return 4;
    return big == pattern(n, 6) ? 0 : 3;
  });
  ASSERT_FALSE(pair.readFromChild().empty());  // rank 1 posted its receive
  pair.stopChild();
  auto [smalls, sent] = pair.fillChildRing(small);
  std::vector<uint8_t> a = pattern(n, 6);
  auto s = pair.t0->isend(1, 1, a.data(), n);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(s->test()) << "the send completed while its chunks' records had no room in the receiver's ring";
  ::kill(pair.pid, SIGCONT);
  pair.writeToChild(AddressBlob(sent.size(), 0));
  for (auto& r : sent) r->wait(Deadline::after(std::chrono::seconds(60)));
  s->wait(Deadline::after(std::chrono::seconds(60)));
  pair.t0.reset();  // leaves at once: what the send completed with must not depend on us any more
  EXPECT_EQ(pair.reap(), 0) << "rank 1 received every message intact";
}

// isendAndCopy cancelled while its announcement still waits for room in the receiver's ring: the
// message goes out later from a private copy (the request fails as cancelled), so nothing may
// write into the caller's local copy once cancel() has returned either.
TEST(ShmPool, ACancelledSendAndCopyWritesNoLocalCopyAfterCancelReturns) {
  TransportOptions opts = pooled(16, 65536);
  opts.shm.ringBytes = 16384;
  opts.shm.eagerBytes = 2048;
  const size_t n = (size_t(256) << 10) + 3, small = 1500;
  PairWithAChild pair("pool-cancel-copy", opts, [&](Transport& t1, int toParent, int fromParent) {
    eccl::testing::writeBlob(toParent, AddressBlob{1});
    const size_t count = eccl::testing::readBlob(fromParent).size();  // (read once running again)
    std::vector<uint8_t> got(small), big(n);
    for (size_t i = 0; i < count; ++i) t1.irecv(0, 2, got.data(), small)->wait(Deadline::after(std::chrono::seconds(60)));
    t1.irecv(0, 1, big.data(), n)->wait(Deadline::after(std::chrono::seconds(60)));
    return big == pattern(n, 7) ? 0 : 3;
  });
  ASSERT_FALSE(pair.readFromChild().empty());
  pair.stopChild();
  auto [smalls, sent] = pair.fillChildRing(small);
  std::vector<uint8_t> a = pattern(n, 7), copy(n);
  auto s = pair.t0->isendAndCopy(1, 1, a.data(), n, copy.data());
  s->cancel();
  std::fill(a.begin(), a.end(), 0);  // both buffers are ours again: nothing may read or write them
  std::fill(copy.begin(), copy.end(), 0);
  ::kill(pair.pid, SIGCONT);
  pair.writeToChild(AddressBlob(sent.size(), 0));
  for (auto& r : sent) r->wait(Deadline::after(std::chrono::seconds(60)));
  expectError(s, kLong(), {"cancelled"});
  EXPECT_EQ(pair.reap(), 0) << "rank 1 got the message that was queued before the cancel, intact";
  EXPECT_TRUE(std::all_of(copy.begin(), copy.end(), [](uint8_t b) { return b == 0; })) << "written after cancel returned";
}

TEST(ShmPool, AReceiverThatStopsReadingHoldsAtMostHalfThePool) {
  // Rank 1 (a child) pulls a long message from rank 0 and is then stopped (SIGSTOP) with chunks
  // of rank 0's pool in its hands; rank 0's messages to rank 2 still get slots and arrive.
  int toParent[2], toChild[2];
  ASSERT_EQ(::pipe(toParent), 0);
  ASSERT_EQ(::pipe(toChild), 0);
  const TransportOptions opts = pooled(4, 4096);
  const size_t n = size_t(256) << 20;
  pid_t child = forkChild([&] {
    auto t1 = createTransport({"pool-stop", 0, 1, 3}, opts);
    eccl::testing::writeBlob(toParent[1], t1->address());
    AddressBlob a0 = eccl::testing::readBlob(toChild[0]), a2 = eccl::testing::readBlob(toChild[0]);
    t1->connect({a0, t1->address(), a2}, Deadline::after(std::chrono::seconds(30)));
    std::vector<uint8_t> buf(n);
    auto r = t1->irecv(0, 1, buf.data(), n);
    r->wait(Deadline::after(std::chrono::seconds(120)));
    return std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0x22; }) ? 0 : 3;
  });
  ChildReaper reaper{child};
  std::vector<std::unique_ptr<Transport>> g;
  g.push_back(createTransport({"pool-stop", 0, 0, 3}, opts));
  g.push_back(nullptr);
  g.push_back(createTransport({"pool-stop", 0, 2, 3}, opts));
  AddressBlob a1 = eccl::testing::readBlob(toParent[0]);
  ASSERT_FALSE(a1.empty());
  eccl::testing::writeBlob(toChild[1], g[0]->address());
  eccl::testing::writeBlob(toChild[1], g[2]->address());
  const std::vector<AddressBlob> all{g[0]->address(), a1, g[2]->address()};
  std::thread other([&] { g[2]->connect(all, Deadline::after(std::chrono::seconds(30))); });
  g[0]->connect(all, Deadline::after(std::chrono::seconds(30)));
  other.join();
  std::vector<uint8_t> big(n, 0x22);
  auto s1 = g[0]->isend(1, 1, big.data(), n);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pulling by now
  ::kill(child, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // rank 0 hands it what it can
  ASSERT_FALSE(s1->test()) << "the long message went through before rank 1 stopped: nothing tested";
  for (int i = 0; i < 4; ++i) {
    auto a = pattern(300000, i);
    std::vector<uint8_t> got(a.size());
    auto r = g[2]->irecv(0, 2, got.data(), got.size());
    auto s = g[0]->isend(2, 2, a.data(), a.size());
    s->wait(Deadline::after(std::chrono::seconds(30)));
    r->wait(Deadline::after(std::chrono::seconds(30)));
    EXPECT_TRUE(got == a) << "message " << i;
  }
  ::kill(child, SIGCONT);
  s1->wait(Deadline::after(std::chrono::seconds(120)));
  EXPECT_EQ(reapChild(child, std::chrono::seconds(60)).exitCode, 0) << "rank 1 received the long message intact";
  reaper.pid = -1;
  for (int fd : {toParent[0], toParent[1], toChild[0], toChild[1]}) ::close(fd);
}

TEST(ShmPool, BadPoolSettingsAreRefusedNamingThem) {
  auto make = [](size_t pool, size_t chunk) {
    return createTransport({"pool-bad", 0, 0, 1}, {.kind = "shm", .host = "127.0.0.1", .shm = {.poolBytes = pool, .chunkBytes = chunk}});
  };
  for (auto [pool, chunk, words] : {std::tuple{size_t(1) << 20, size_t(1000), "ECCL_SHM_CHUNK_BYTES"},
                                    std::tuple{size_t(1) << 20, size_t(2) << 20, "ECCL_SHM_CHUNK_BYTES"},
                                    std::tuple{size_t(2) << 30, size_t(4096), "ECCL_SHM_POOL_BYTES"},
                                    std::tuple{size_t(1000), size_t(0), "ECCL_SHM_POOL_BYTES"}}) {
    try {
      make(pool, chunk);
      ADD_FAILURE() << "pool " << pool << ", chunk " << chunk << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(make(0, 1000)) << "without a pool the chunk size is not used";
  EXPECT_NO_THROW(make(65536, 0)) << "the default chunk shrinks to a small pool";
}

}  // namespace
}  // namespace eccl::transport
