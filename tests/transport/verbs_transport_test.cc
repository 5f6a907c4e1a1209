// The verbs transport's own behaviours (the shared ones are in the conformance suite). Tests
// named Verbs.* need an RDMA device: ctest runs them (label rdma) inside the Soft-RoCE VM.
// VerbsChoice.* run anywhere.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "tests/transport/expect_error.h"
#include "tests/transport/local_group.h"

namespace eccl::transport {
namespace {

using eccl::testing::expectError;
using eccl::testing::kLong;
using eccl::testing::localTransports;
using eccl::testing::pattern;

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(VerbsChoice, AnUnknownDeviceIsNamedWithTheDevicesThere) {
  const std::string m = errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1", .verbs = {.hca = "nosuchhca0"}}); });
  ASSERT_FALSE(m.empty()) << "accepted";
  // Here without RDMA hardware the list is empty; in the VM it names rxe0.
  EXPECT_TRUE(m.find("'nosuchhca0' (ECCL_IB_HCA) not found; devices here:") != std::string::npos ||
              m.find("no RDMA device found") != std::string::npos)
      << m;
}

TEST(VerbsChoice, BadSettingsAreErrorsNamingTheVariable) {
  const std::string port = errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1", .verbs = {.hca = "rxe0:x"}}); });
  EXPECT_NE(port.find("ECCL_IB_HCA 'rxe0:x'"), std::string::npos) << port;
  const std::string timeout = errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1", .verbs = {.ibTimeout = 40}}); });
  EXPECT_NE(timeout.find("ECCL_IB_TIMEOUT"), std::string::npos) << timeout;
}

TEST(Verbs, AGidIndexThatIsNotThereListsTheGids) {
  const std::string m = errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1", .verbs = {.gidIndex = 99}}); });
  EXPECT_NE(m.find("GID index 99 (ECCL_IB_GID_INDEX) is not usable"), std::string::npos) << m;
  EXPECT_NE(m.find("its GIDs: "), std::string::npos) << m;
}

TEST(Verbs, PeersNameTheDeviceTheyTalkOver) {
  auto g = localTransports(2, {.kind = "verbs"});
  EXPECT_NE(g[0]->peerAddress(1).find(" over "), std::string::npos) << g[0]->peerAddress(1);
}

// Writes and reads larger than the port's message limit go in pieces (the limit forced small).
TEST(Verbs, TransfersBeyondTheMessageLimitGoInPieces) {
  auto g = localTransports(2, {.kind = "verbs", .verbs = {.maxMessageBytes = 64 * 1024}});
  for (size_t n : {size_t(64 * 1024), size_t(64 * 1024 + 1), size_t(1 << 20) + 5}) {
    auto a = pattern(n, 4);
    std::vector<uint8_t> r(n);
    auto rr = g[1]->irecv(0, 3, r.data(), n);
    g[0]->isend(1, 3, a.data(), n)->wait(kLong());
    rr->wait(kLong());
    EXPECT_TRUE(r == a) << n;
  }
  auto owned = pattern(1 << 20, 8);
  MemoryRegion mr = g[0]->registerMemory(owned.data(), owned.size());
  std::vector<uint8_t> got(300000);
  g[1]->iread(0, g[0]->exportRegion(mr), 4097, got.data(), got.size(), nullptr)->wait(kLong());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), owned.begin() + 4097));
  g[0]->deregisterMemory(mr);
}

// Eager messages beyond the unexpected budget stay in their receive buffers (the sender runs
// out of credits and waits): nothing is lost, and every message arrives in order.
TEST(Verbs, UnexpectedMessagesBeyondTheBudgetWaitInTheirBuffers) {
  auto g = localTransports(2, {.kind = "verbs", .verbs = {.unexpectedBudget = 64 * 1024}});
  const int count = 400;  // 400 × 4 KiB: far beyond the budget and the credits
  std::vector<std::vector<uint8_t>> out(count), in(count);
  std::vector<RequestPtr> sends;
  for (int i = 0; i < count; ++i) {
    out[i] = pattern(4096, i);
    sends.push_back(g[0]->isend(1, 1, out[i].data(), out[i].size()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < count; ++i) {
    in[i].resize(4096);
    g[1]->irecv(0, 1, in[i].data(), in[i].size())->wait(kLong());
    ASSERT_TRUE(in[i] == out[i]) << "message " << i;
  }
  for (auto& s : sends) s->wait(kLong());
}

// The device's count of receiver-not-ready events (rxe and mlx5 keep it in sysfs), for the
// device and port `peerAddress` names ("… over rxe0:1").
long long rnrCount(const std::string& peerAddress) {
  const auto over = peerAddress.rfind(" over ");
  const std::string dev = peerAddress.substr(over + 6, peerAddress.rfind(':') - over - 6);
  const std::string port = peerAddress.substr(peerAddress.rfind(':') + 1);
  long long total = 0;
  for (const char* counter : {"rcvd_rnr_err", "send_rnr_err"}) {
    std::ifstream f("/sys/class/infiniband/" + dev + "/ports/" + port + "/hw_counters/" + counter);
    long long v = -1;
    if (!(f >> v)) return -1;
    total += v;
  }
  return total;
}

// Credits keep a receive buffer posted for every message: three senders flooding one receiver
// that posts nothing for a while never meet a receiver-not-ready, per the device's own counters.
TEST(Verbs, CreditsMeanTheReceiverIsNeverNotReady) {
  auto g = localTransports(4, {.kind = "verbs", .verbs = {.unexpectedBudget = 256 * 1024}});
  const long long before = rnrCount(g[0]->peerAddress(1));
  ASSERT_GE(before, 0) << "no RNR counters for " << g[0]->peerAddress(1);
  const int count = 1500;
  std::vector<std::vector<uint8_t>> out(3 * count), in(3 * count);
  std::vector<RequestPtr> reqs;
  for (int s = 1; s <= 3; ++s)
    for (int i = 0; i < count; ++i) {
      auto& m = out[(s - 1) * count + i];
      m = pattern(1 + (i * 131) % 8000, s * count + i);
      reqs.push_back(g[s]->isend(0, 7, m.data(), m.size()));
    }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int s = 1; s <= 3; ++s)
    for (int i = 0; i < count; ++i) {
      auto& m = in[(s - 1) * count + i];
      m.resize(out[(s - 1) * count + i].size());
      reqs.push_back(g[0]->irecv(s, 7, m.data(), m.size()));
    }
  for (auto& r : reqs) r->wait(kLong());
  EXPECT_TRUE(in == out);
  EXPECT_EQ(rnrCount(g[0]->peerAddress(1)), before) << "receiver-not-ready events happened";
}

// A receive cancelled after its clear-to-send went out — posted before the send, or after its
// announcement had arrived: once cancel() returns nothing more is written into the buffer, the
// sender's request finishes, and the pair stays usable.
TEST(Verbs, ACancelAfterTheClearToSendLeavesTheBufferAlone) {
  auto g = localTransports(2, {.kind = "verbs", .verbs = {.maxMessageBytes = 16 * 1024}});
  const size_t n = 8 << 20;  // many pieces: the cancel lands while they are being written
  for (bool receiveFirst : {true, false}) {
    const Tag tag = receiveFirst ? 4 : 14;
    auto a = pattern(n, 6);
    std::vector<uint8_t> r(n, 0);
    RequestPtr rr, s;
    if (receiveFirst) rr = g[1]->irecv(0, tag, r.data(), n);
    s = g[0]->isend(1, tag, a.data(), n);
    if (!receiveFirst) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the announcement is there
      rr = g[1]->irecv(0, tag, r.data(), n);
    }
    for (auto until = Clock::now() + std::chrono::seconds(30); r[0] == 0 && Clock::now() < until;) std::this_thread::yield();
    rr->cancel();
    const std::vector<uint8_t> atCancel = r;
    try {
      s->wait(kLong());  // finishes either way
    } catch (const Error&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(r == atCancel) << "written after cancel() returned (receive " << (receiveFirst ? "first)" : "second)");
    auto b = pattern(1 << 20, 7);
    std::vector<uint8_t> rb(b.size());
    auto r2 = g[1]->irecv(0, tag + 1, rb.data(), rb.size());
    g[0]->isend(1, tag + 1, b.data(), b.size())->wait(kLong());
    r2->wait(kLong());
    EXPECT_TRUE(rb == b);
  }
}

// The receiver holds the sender's eager messages (its unexpected budget is spent) and waits for
// a message the sender has queued behind them: the credits it frees must go back at once, or
// both wait for ever.
TEST(Verbs, HeldMessagesDoNotStarveTheMessageTheReceiverWaitsFor) {
  auto g = localTransports(2, {.kind = "verbs", .verbs = {.unexpectedBudget = 64 * 1024}});
  const int count = 70;  // beyond the sender's eager credits (64 less 2 kept for control)
  std::vector<std::vector<uint8_t>> out(count), in(count);
  for (int i = 0; i < count; ++i) {
    out[i] = pattern(4096, i);
    g[0]->isend(1, 1, out[i].data(), out[i].size());  // (eager: finished when posted)
  }
  uint32_t last = 0xfeed, got = 0;
  g[0]->isend(1, 2, &last, sizeof(last));
  g[1]->irecv(0, 2, &got, sizeof(got))->wait(kLong());
  EXPECT_EQ(got, last);
  for (int i = 0; i < count; ++i) {
    in[i].resize(4096);
    g[1]->irecv(0, 1, in[i].data(), in[i].size())->wait(kLong());
    ASSERT_TRUE(in[i] == out[i]) << "message " << i;
  }
}

// Reads longer than a read window check the owner's guard again between windows; a region
// deregistered in the middle fails the read cleanly (no broken queue pair).
TEST(Verbs, LongReadsCheckTheRegionBetweenWindows) {
  auto g = localTransports(2, {.kind = "verbs"});
  auto owned = pattern(40 << 20, 3);
  MemoryRegion mr = g[0]->registerMemory(owned.data(), owned.size());
  const RegionBlob blob = g[0]->exportRegion(mr);
  std::vector<uint8_t> got(owned.size() - 5);
  g[1]->iread(0, blob, 5, got.data(), got.size(), nullptr)->wait(kLong());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), owned.begin() + 5));
  auto pending = g[1]->iread(0, blob, 0, got.data(), got.size(), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  g[0]->deregisterMemory(mr);
  try {
    pending->wait(kLong());  // (it may have finished before the deregistration)
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deregistered the region"), std::string::npos) << e.what();
  }
  uint32_t v = 9, w = 0;
  auto r = g[0]->irecv(1, 1, &w, 4);
  g[1]->isend(0, 1, &v, 4)->wait(kLong());
  r->wait(kLong());
  EXPECT_EQ(w, 9u);
}

TEST(Verbs, RanksWithDifferentEagerLimitsAreRefusedNamingThePeer) {
  std::vector<std::unique_ptr<Transport>> ts;
  for (int r = 0; r < 2; ++r)
    ts.push_back(createTransport({"eager", 0, r, 2}, {.kind = "verbs", .host = "127.0.0.1", .verbs = {.eagerBytes = r ? 4096u : 8192u}}));
  const std::string m = errorOf([&] { eccl::testing::connectAll(ts); });
  EXPECT_NE(m.find("rank 1"), std::string::npos) << m;
  EXPECT_NE(m.find("same VerbsOptions::eagerBytes"), std::string::npos) << m;
}

// A large send cancelled by its sender while the writes are under way: cancel() returns when
// the buffer is free, and the receiver learns the message is partial.
TEST(Verbs, ASenderCancelMidWriteTellsTheReceiver) {
  auto g = localTransports(2, {.kind = "verbs", .verbs = {.maxMessageBytes = 16 * 1024}});
  const size_t n = 8 << 20;
  auto a = pattern(n, 9);
  std::vector<uint8_t> r(n, 0);
  auto rr = g[1]->irecv(0, 4, r.data(), n);
  auto s = g[0]->isend(1, 4, a.data(), n);
  for (auto until = Clock::now() + std::chrono::seconds(30); r[0] == 0 && Clock::now() < until;) std::this_thread::yield();
  s->cancel();
  if (s->error()) expectError(rr, kLong(), {"rank 0", "cancelled the send"});  // (else it had finished)
  else rr->wait(kLong());
}

// The port going down (its interface taken down, in the VM) is a device event: the transport
// breaks naming the port; a new transport is refused naming the port's state. (Needs the VM's
// $RXE_VM_IF and root; skipped elsewhere.)
TEST(Verbs, APortGoingDownBreaksTheTransportAndIsNamed) {
  const char* ifname = std::getenv("RXE_VM_IF");
  if (!ifname || ::geteuid() != 0) GTEST_SKIP() << "needs the rxe VM's interface and root";
  auto g = localTransports(2, {.kind = "verbs"});
  uint32_t v = 0;
  auto pending = g[1]->irecv(0, 1, &v, sizeof v);
  auto link = [&](const char* state) { return std::system(("ip link set " + std::string(ifname) + " " + state).c_str()); };
  ASSERT_EQ(link("down"), 0);
  expectError(pending, kLong(), {"went down"});
  const std::string m = errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1"}); });
  ASSERT_EQ(link("up"), 0);
  EXPECT_NE(m.find("no active RDMA port"), std::string::npos) << m;
  EXPECT_NE(m.find(" is down"), std::string::npos) << m;
  // The port comes back (ACTIVE again within seconds), and new transports work.
  for (auto until = Clock::now() + std::chrono::seconds(30); Clock::now() < until;) {
    if (errorOf([] { createTransport({"v", 0, 0, 1}, {.kind = "verbs", .host = "127.0.0.1"}); }).empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto h = localTransports(2, {.kind = "verbs"});
  uint32_t w = 0, x = 5;
  auto r = h[1]->irecv(0, 1, &w, sizeof w);
  h[0]->isend(1, 1, &x, sizeof x)->wait(kLong());
  r->wait(kLong());
  EXPECT_EQ(w, 5u);
}

// Rank 1 (a child process) is killed while a large message to it is being written, and while
// one from it is: every survivor's operation fails fast naming it; nothing hangs.
TEST(Verbs, APeerKilledMidRendezvousFailsItsOperationsNamingIt) {
  for (bool parentSends : {true, false}) {
    int toParent[2], toChild[2];
    ASSERT_EQ(::pipe(toParent), 0);
    ASSERT_EQ(::pipe(toChild), 0);
    const TransportOptions opts{.kind = "verbs", .host = "127.0.0.1", .verbs = {.maxMessageBytes = 16 * 1024}};
    const size_t n = 32 << 20;
    pid_t child = forkChild([&] {
      auto t1 = createTransport({"kill", 0, 1, 2}, opts);
      eccl::testing::writeBlob(toParent[1], t1->address());
      AddressBlob a0 = eccl::testing::readBlob(toChild[0]);
      t1->connect({a0, t1->address()}, Deadline::after(std::chrono::seconds(60)));
      std::vector<uint8_t> big(n, 1);
      auto r = parentSends ? t1->irecv(0, 1, big.data(), n) : t1->isend(0, 1, big.data(), n);
      [[maybe_unused]] auto w = ::write(toParent[1], "x", 1);
      ::pause();
      return 0;
    });
    auto t0 = createTransport({"kill", 0, 0, 2}, opts);
    AddressBlob a1 = eccl::testing::readBlob(toParent[0]);
    ASSERT_FALSE(a1.empty());
    eccl::testing::writeBlob(toChild[1], t0->address());
    t0->connect({t0->address(), a1}, Deadline::after(std::chrono::seconds(60)));
    std::vector<uint8_t> big(n, 2);
    auto op = parentSends ? t0->isend(1, 1, big.data(), n) : t0->irecv(1, 1, big.data(), n);
    char x;
    ASSERT_EQ(::read(toParent[0], &x, 1), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the writes are under way
    ::kill(child, SIGKILL);
    const auto start = Clock::now();
    expectError(op, Deadline::after(std::chrono::seconds(60)), {"rank 1"});
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10)) << (parentSends ? "send" : "receive");
    reapChild(child, std::chrono::seconds(10));
    for (int fd : {toParent[0], toParent[1], toChild[0], toChild[1]}) ::close(fd);
  }
}

}  // namespace
}  // namespace eccl::transport
