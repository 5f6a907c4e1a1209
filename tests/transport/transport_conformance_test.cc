// What every transport must do, as one suite run over each of them: sockets, eccl's shared
// memory (large messages through its pool, and by cross-memory attach alone), libfabric's shm
// provider, libfabric's tcp;ofi_rxm provider and verbs (the verbs instances need an RDMA device:
// ctest runs them, label rdma, inside the Soft-RoCE VM). Sizes straddle each eager/rendezvous limit.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <thread>

#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "tests/transport/expect_error.h"
#include "tests/transport/local_group.h"

namespace eccl::transport {
namespace {

using eccl::testing::localTransports;
using eccl::testing::pattern;
using eccl::testing::expectError;
using eccl::testing::kLong;

struct Flavor {
  std::string name;
  TransportOptions options;
};
std::ostream& operator<<(std::ostream& os, const Flavor& f) { return os << f.name; }

class Conformance : public ::testing::TestWithParam<Flavor> {
 protected:
  std::vector<std::unique_ptr<Transport>> group(int n, const std::string& name = "conf") {
    return localTransports(n, GetParam().options, name);
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, Conformance,
                         ::testing::Values(Flavor{"socket", {.kind = "socket"}},
                                           Flavor{"shm", {.kind = "shm"}},
                                           Flavor{"shm_cma", {.kind = "shm", .shm = {.poolBytes = 0}}},
                                           Flavor{"auto", {.kind = "auto"}},
                                           Flavor{"ofi_shm", {.kind = "ofi", .ofi = {.provider = "shm"}}},
                                           Flavor{"ofi_tcp", {.kind = "ofi", .ofi = {.provider = "tcp"}}},
                                           Flavor{"verbs", {.kind = "verbs"}}),
                         [](const auto& info) { return info.param.name; });

TEST_P(Conformance, SizesInBothPostingOrders) {
  auto g = group(2);
  for (size_t n : {size_t(0), size_t(1), size_t(4095), size_t(4097), size_t(16384 + 1), size_t(65535), size_t(65536),
                   size_t(1 << 20) + 3, size_t(16) << 20}) {
    auto a = pattern(n, 1), b = pattern(n, 2);
    std::vector<uint8_t> ra(n), rb(n);
    auto r1 = g[1]->irecv(0, 5, rb.data(), n);  // posted first
    auto s1 = g[0]->isend(1, 5, a.data(), n);
    auto s2 = g[1]->isend(0, 6, b.data(), n);   // sent first
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto r2 = g[0]->irecv(1, 6, ra.data(), n);
    for (auto& r : {r1, s1, s2, r2}) r->wait(kLong());
    EXPECT_TRUE(rb == a) << n << " bytes";
    EXPECT_TRUE(ra == b) << n << " bytes";
  }
}

TEST_P(Conformance, EqualTagsMatchInPostingOrderAcrossEagerAndLargeSizes) {
  auto g = group(2);
  const int count = 40;
  std::vector<std::vector<uint8_t>> sent, got(count);
  std::vector<RequestPtr> reqs;
  for (int i = 0; i < count; ++i) sent.push_back(pattern(i % 3 == 0 ? 300000 + i : 1 + i * 37, i));
  for (int i = 0; i < count / 2; ++i) {
    got[i].resize(sent[i].size());
    reqs.push_back(g[1]->irecv(0, 42, got[i].data(), got[i].size()));
  }
  for (int i = 0; i < count; ++i) reqs.push_back(g[0]->isend(1, 42, sent[i].data(), sent[i].size()));
  for (int i = count / 2; i < count; ++i) {
    got[i].resize(sent[i].size());
    reqs.push_back(g[1]->irecv(0, 42, got[i].data(), got[i].size()));
  }
  for (auto& r : reqs) r->wait(kLong());
  for (int i = 0; i < count; ++i) EXPECT_TRUE(got[i] == sent[i]) << "message " << i;
}

TEST_P(Conformance, ManyUnexpectedAndOutstandingOperations) {
  auto g = group(2);
  const int count = 3000;  // beyond every provider's queue depth (shm 1024, rxm 2048)
  std::vector<uint32_t> out(count), in(count, 0);
  std::vector<RequestPtr> reqs;
  for (int i = 0; i < count; ++i) {
    out[i] = i * 2654435761u;
    reqs.push_back(g[0]->isend(1, 100 + i % 7, &out[i], 4));
  }
  for (int i = 0; i < count; ++i) reqs.push_back(g[1]->irecv(0, 100 + i % 7, &in[i], 4));
  for (auto& r : reqs) r->wait(kLong());
  EXPECT_EQ(in, out);
}

TEST_P(Conformance, SelfSendIsALocalCopy) {
  auto g = group(2);
  auto a = pattern(100000, 3);
  std::vector<uint8_t> r(a.size());
  auto s = g[1]->isend(1, 9, a.data(), a.size());
  auto rr = g[1]->irecv(1, 9, r.data(), r.size());
  s->wait(kLong());
  rr->wait(kLong());
  EXPECT_TRUE(r == a);
}

// isendAndCopy: the peer (or this rank) gets the message, and the local copy holds it once the
// send has finished — whether the transport copies it with the message or after it. Sizes cross
// each eager limit and the shared-memory chunk size, with odd lengths and unaligned buffers.
TEST_P(Conformance, SendAndCopyDeliversTheBytesAndKeepsThem) {
  auto g = group(2);
  for (size_t n : {size_t(0), size_t(1), size_t(4097), size_t(65536 + 63), size_t(1 << 20) + 3, size_t(3 << 20) + 5})
    for (int to : {1, 0})
      for (bool postedFirst : {true, false}) {
        SCOPED_TRACE(std::to_string(n) + " bytes to rank " + std::to_string(to) + (postedFirst ? ", received" : ", sent") + " first");
        auto src = pattern(n + 1, static_cast<int>(n % 251));
        std::vector<uint8_t> copy(n + 2, 0xA5), got(n);
        RequestPtr r;
        if (postedFirst) r = g[to]->irecv(0, 11, got.data(), n);
        auto s = g[0]->isendAndCopy(to, 11, src.data() + 1, n, copy.data() + 1);
        if (!postedFirst) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));  // (mostly: announced before the receive)
          r = g[to]->irecv(0, 11, got.data(), n);
        }
        s->wait(kLong());
        r->wait(kLong());
        EXPECT_TRUE(std::equal(got.begin(), got.end(), src.begin() + 1));
        EXPECT_TRUE(std::equal(copy.begin() + 1, copy.end() - 1, src.begin() + 1)) << "the local copy";
        EXPECT_EQ(copy.front(), 0xA5);
        EXPECT_EQ(copy.back(), 0xA5) << "written past the local copy";
      }
  try {
    const uint64_t word = 1;
    g[0]->isendAndCopy(1, 12, &word, sizeof word, nullptr);
    ADD_FAILURE() << "a null local copy was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("local copy"), std::string::npos) << e.what();
  }
  std::vector<uint8_t> both(64);
  try {
    g[0]->isendAndCopy(1, 12, both.data(), 32, both.data() + 16);
    ADD_FAILURE() << "a local copy overlapping the message was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overlaps"), std::string::npos) << e.what();
  }
}

// A large send the receiver does not take (its receive has another size, so shared memory's
// receiver takes none of it through the pool and answers "done"): the send finishes, and its
// local copy is whole all the same. (Verbs may fail such a send instead: then nothing is promised.)
TEST_P(Conformance, SendAndCopyKeepsTheBytesWhenTheReceiverRefusesThem) {
  if (GetParam().options.kind == "ofi") GTEST_SKIP() << "libfabric 1.17 providers do not survive a truncated message";
  auto g = group(2);
  const size_t n = size_t(1 << 20) + 7;
  auto src = pattern(n, 4);
  std::vector<uint8_t> copy(n), got(4096);
  auto s = g[0]->isendAndCopy(1, 13, src.data(), n, copy.data());
  auto r = g[1]->irecv(0, 13, got.data(), got.size());
  expectError(r, kLong(), {"rank 0", "mismatch"});
  if (GetParam().options.kind == "verbs") {
    try {
      s->wait(kLong());
    } catch (const Error&) {
      return;
    }
  } else {
    s->wait(kLong());
  }
  EXPECT_TRUE(copy == src) << "the send finished but its local copy is not whole";
}

// A message shorter than its receive. (Longer ones: the socket transport fails the receive and
// goes on; libfabric 1.17's shm and tcp;ofi_rxm providers cannot survive the truncation — see
// ofi_transport.h — so that case is tested for sockets in socket_transport_test.cc.)
// A `send`-byte message meets a `recv`-byte receive (posted before it or after): the receive
// fails naming the peer and the mismatch, nothing lands past its buffer, the send finishes one
// way or the other, and the next message on the pair arrives intact.
void expectMismatchThenUsable(std::vector<std::unique_ptr<Transport>>& g, size_t send, size_t recv, bool postedFirst) {
  auto a = pattern(send, 1);
  std::vector<uint8_t> r(recv + 1);  // one spare byte, checked untouched
  r[recv] = 0xA5;
  RequestPtr rr;
  if (postedFirst) rr = g[1]->irecv(0, 1, r.data(), recv);
  auto s = g[0]->isend(1, 1, a.data(), a.size());
  if (!postedFirst) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    rr = g[1]->irecv(0, 1, r.data(), recv);
  }
  expectError(rr, kLong(), {"rank 0", "mismatch"});
  try {
    s->wait(kLong());  // a transport may fail the send too; it must finish either way
  } catch (const Error&) {
  }
  EXPECT_EQ(r[recv], 0xA5) << send << " -> " << recv << ": written past the receive";
  auto b = pattern(1000, 2);
  std::vector<uint8_t> rb(1000);
  auto r2 = g[1]->irecv(0, 2, rb.data(), rb.size());
  g[0]->isend(1, 2, b.data(), b.size())->wait(kLong());
  r2->wait(kLong());
  EXPECT_TRUE(rb == b) << send << " -> " << recv;
}

TEST_P(Conformance, ShortMessageFailsTheReceiveAndTheTransportStaysUsable) {
  auto g = group(2);
  for (auto [send, recv] : {std::pair<size_t, size_t>{32, 64}, {4096, 1 << 20}, {0, 16}})
    expectMismatchThenUsable(g, send, recv, true);
}

// A message longer than its receive (libfabric 1.17's providers cannot survive it: skipped).
TEST_P(Conformance, LongMessageFailsTheReceiveAndTheTransportStaysUsable) {
  if (GetParam().options.kind == "ofi") GTEST_SKIP() << "libfabric 1.17 providers do not survive a truncated message";
  auto g = group(2);
  for (auto [send, recv] : {std::pair<size_t, size_t>{64, 32}, {1 << 20, 4096}, {16, 0}, {1 << 20, (1 << 20) - 1}})
    for (bool postedFirst : {true, false}) expectMismatchThenUsable(g, send, recv, postedFirst);
}

TEST_P(Conformance, SelfSendAfterACancelledSelfReceiveIsDropped) {
  if (GetParam().options.kind == "ofi" || GetParam().options.kind == "verbs")
    GTEST_SKIP() << "libfabric and verbs give a message to oneself to the next receive (see transport.h)";
  auto g = group(2);
  std::vector<uint8_t> r1(64), r2(64);
  auto a = pattern(64, 3), b = pattern(64, 4);
  auto cancelled = g[0]->irecv(0, 4, r1.data(), r1.size());
  cancelled->cancel();
  g[0]->isend(0, 4, a.data(), a.size())->wait(kLong());  // the message of the cancelled receive: dropped
  auto next = g[0]->irecv(0, 4, r2.data(), r2.size());
  g[0]->isend(0, 4, b.data(), b.size())->wait(kLong());
  next->wait(kLong());
  EXPECT_TRUE(r2 == b);
}

// A peer that sends and then destroys its transport at once (a clean goodbye): everything it
// sent is still received, also by receives posted after it left.
TEST_P(Conformance, MessagesSentBeforeAGoodbyeAreStillReceived) {
  auto g = group(2);
  constexpr int kCount = 200;
  std::vector<std::vector<uint8_t>> out(kCount), in(kCount);
  std::vector<RequestPtr> sends;
  for (int i = 0; i < kCount; ++i) {
    out[i] = pattern(100 + i, i);
    sends.push_back(g[0]->isend(1, 1, out[i].data(), out[i].size()));
  }
  for (auto& s : sends) s->wait(kLong());
  g[0].reset();  // goodbye
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < kCount; ++i) {
    in[i].resize(100 + i);
    g[1]->irecv(0, 1, in[i].data(), in[i].size())->wait(kLong());
    ASSERT_TRUE(in[i] == out[i]) << "message " << i;
  }
  std::vector<uint8_t> more(8);
  expectError(g[1]->irecv(0, 1, more.data(), more.size()), kLong(), {"rank 0", "left"});
}

// A finished send frees its buffer, whether or not the receiver has the bytes yet (shm finishes
// a large one once it is all in its pool): a sender that then leaves at once still delivers it.
TEST_P(Conformance, ALargeSendThatFinishedIsReceivedAfterItsSenderLeft) {
  auto g = group(2);
  const size_t n = size_t(3) << 20;
  std::vector<uint8_t> got(n);
  auto r = g[1]->irecv(0, 1, got.data(), n);
  {
    auto a = pattern(n, 7);
    g[0]->isend(1, 1, a.data(), n)->wait(kLong());
    a.assign(n, 0xEE);  // the buffer is the caller's again
  }
  g[0].reset();  // goodbye
  r->wait(kLong());
  EXPECT_TRUE(got == pattern(n, 7));
}

TEST_P(Conformance, CancelledReceiveLeavesItsBufferAndTheTransportUsable) {
  auto g = group(2);
  for (size_t n : {size_t(4096), size_t(4) << 20}) {
    std::vector<uint8_t> r1(n), r2(n);
    auto first = g[1]->irecv(0, 7, r1.data(), r1.size());
    first->cancel();
    expectError(first, kLong(), {"cancelled"});
    auto a = pattern(n, 5);
    // What the cancelled receive would have matched is transport-specific (see transport.h):
    // the next exchange uses a tag of its own.
    auto second = g[1]->irecv(0, 8 + n, r2.data(), r2.size());
    g[0]->isend(1, 8 + n, a.data(), a.size())->wait(kLong());
    second->wait(kLong());
    EXPECT_TRUE(r2 == a);
    EXPECT_TRUE(std::all_of(r1.begin(), r1.end(), [](uint8_t b) { return b == 0; }));
  }
}

TEST_P(Conformance, TimedOutReceiveReturnsItsBuffer) {
  auto g = group(2);
  std::vector<uint8_t> r(1 << 20);
  auto rr = g[1]->irecv(0, 3, r.data(), r.size());
  expectError(rr, Deadline::after(std::chrono::milliseconds(50)), {"timed out", "receive of 1048576 bytes", "rank 0"});
}

TEST_P(Conformance, ReadsPullFromARegisteredRegion) {
  auto g = group(2);
  auto owned = pattern(3 << 20, 9);
  MemoryRegion mr = g[0]->registerMemory(owned.data(), owned.size());
  RegionBlob blob = g[0]->exportRegion(mr);
  for (auto [off, n] : {std::pair<size_t, size_t>{0, 8}, {12345, 100000}, {1 << 20, 2 << 20}, {17, 0}}) {
    std::vector<uint8_t> got(n);
    g[1]->iread(0, blob, off, got.data(), n, nullptr)->wait(kLong());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), owned.begin() + off)) << off << "+" << n;
  }
  // Into a registered buffer of the reader's own.
  std::vector<uint8_t> dst(4096);
  MemoryRegion local = g[1]->registerMemory(dst.data(), dst.size());
  g[1]->iread(0, blob, 777, dst.data(), dst.size(), &local)->wait(kLong());
  EXPECT_TRUE(std::equal(dst.begin(), dst.end(), owned.begin() + 777));
  g[1]->deregisterMemory(local);
  // Bad requests are refused before anything moves, naming what is wrong.
  try {
    g[1]->iread(0, blob, owned.size() - 4, dst.data(), 8, nullptr);
    ADD_FAILURE() << "read past the end accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the region"), std::string::npos) << e.what();
  }
  try {
    g[1]->iread(1, blob, 0, dst.data(), 8, nullptr);
    ADD_FAILURE() << "another rank's blob accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to rank 0"), std::string::npos) << e.what();
  }
  g[0]->deregisterMemory(mr);
}

TEST_P(Conformance, ReadAfterTheOwnerDeregisteredFailsCleanly) {
  auto g = group(2);
  // Its own mapping, unmapped afterwards: a read that still reached it would fault or read junk.
  const size_t n = 1 << 20;
  void* mem = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  std::memset(mem, 0x5a, n);
  MemoryRegion mr = g[0]->registerMemory(mem, n);
  RegionBlob blob = g[0]->exportRegion(mr);
  g[0]->deregisterMemory(mr);
  std::vector<uint8_t> got(4096);
  expectError(g[1]->iread(0, blob, 0, got.data(), got.size(), nullptr), kLong(), {"read of 4096 bytes", "rank 0"});
  ::munmap(mem, n);
  // The transport stays usable — except that tcp;ofi_rxm drops its connection to a peer that
  // read with a stale key, so there the next operation fails (promptly and clearly).
  uint32_t v = 7, w = 0;
  auto r = g[0]->irecv(1, 1, &w, 4);
  try {
    g[1]->isend(0, 1, &v, 4)->wait(kLong());
    r->wait(kLong());
    EXPECT_EQ(w, 7u);
  } catch (const Error& e) {
    EXPECT_EQ(GetParam().name, "ofi_tcp") << e.what();
    r->cancel();
  }
}

TEST_P(Conformance, AbortFailsEveryRankNamingTheReason) {
  auto g = group(3);
  uint32_t v;
  auto r2 = g[2]->irecv(1, 1, &v, 4);
  auto r0 = g[0]->irecv(2, 1, &v, 4);
  g[1]->abort("operator pressed stop");
  expectError(r2, kLong(), {"operator pressed stop"});
  expectError(r0, kLong(), {"operator pressed stop"});
}

TEST_P(Conformance, DestroyWhileAnotherThreadWaits) {
  auto g = group(2);
  std::vector<uint8_t> r(1 << 20);
  auto pending = g[1]->irecv(0, 2, r.data(), r.size());
  std::thread waiter([&] { expectError(pending, kLong(), {"destroyed"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  g[1].reset();
  waiter.join();
}

TEST_P(Conformance, KilledPeerFailsPendingOperationsNamingIt) {
  // Rank 1 lives in a child process, forked before this process touches any transport.
  int toParent[2], toChild[2];
  ASSERT_EQ(::pipe(toParent), 0);
  ASSERT_EQ(::pipe(toChild), 0);
  const TransportOptions opts = [] {
    auto o = GetParam().options;
    o.host = "127.0.0.1";
    return o;
  }();
  pid_t child = forkChild([&] {
    auto t1 = createTransport({"kill", 0, 1, 2}, opts);
    eccl::testing::writeBlob(toParent[1], t1->address());
    AddressBlob a0 = eccl::testing::readBlob(toChild[0]);
    t1->connect({a0, t1->address()}, Deadline::after(std::chrono::seconds(30)));
    ::pause();
    return 0;
  });
  auto t0 = createTransport({"kill", 0, 0, 2}, opts);
  AddressBlob a1 = eccl::testing::readBlob(toParent[0]);
  ASSERT_FALSE(a1.empty());
  eccl::testing::writeBlob(toChild[1], t0->address());
  t0->connect({t0->address(), a1}, Deadline::after(std::chrono::seconds(30)));
  std::vector<uint8_t> buf(16);
  auto r = t0->irecv(1, 1, buf.data(), buf.size());
  auto big = pattern(4 << 20, 1);
  auto s = t0->isend(1, 2, big.data(), big.size());  // large: the peer never receives it
  ::kill(child, SIGKILL);
  auto start = Clock::now();
  expectError(r, Deadline::after(std::chrono::seconds(30)), {"rank 1", "closed its connection"});
  expectError(s, Deadline::after(std::chrono::seconds(30)), {"send of 4194304 bytes", "rank 1"});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  reapChild(child, std::chrono::seconds(10));
}

// Messages beyond a provider's size limit travel in pieces (forced small here).
TEST(OfiTransport, MessagesLargerThanTheProviderLimitGoInPieces) {
  for (std::string provider : {"shm", "tcp"}) {
    auto g = localTransports(2, {.kind = "ofi", .ofi = {.provider = provider, .maxMessageBytes = 64 * 1024}});
    for (size_t n : {size_t(64 * 1024), size_t(64 * 1024 + 1), size_t(1 << 20) + 5}) {
      auto a = pattern(n, 4);
      std::vector<uint8_t> r(n);
      auto rr = g[1]->irecv(0, 3, r.data(), n);
      g[0]->isend(1, 3, a.data(), n)->wait(kLong());
      rr->wait(kLong());
      EXPECT_TRUE(r == a) << provider << " " << n;
    }
  }
}

// Two simulated hosts of two ranks each: shared memory inside a host, tcp between them.
TEST(OfiTransport, AutoPicksSharedMemoryInsideAHostAndTcpBetween) {
  const int n = 4;
  std::vector<std::unique_ptr<Transport>> ts;
  for (int r = 0; r < n; ++r) {
    TransportOptions o{.kind = "ofi", .host = "127.0.0.1", .ofi = {.provider = "auto", .hostId = r < 2 ? "host-a" : "host-b"}};
    ts.push_back(createTransport({"mixed", 0, r, n}, o));
  }
  eccl::testing::connectAll(ts);
  EXPECT_NE(ts[0]->peerAddress(1).find("over shm"), std::string::npos) << ts[0]->peerAddress(1);
  EXPECT_NE(ts[0]->peerAddress(2).find("over tcp;ofi_rxm"), std::string::npos) << ts[0]->peerAddress(2);
  EXPECT_NE(ts[3]->peerAddress(2).find("over shm"), std::string::npos) << ts[3]->peerAddress(2);
  // Every rank sends every other rank a distinct 256 KiB message.
  std::vector<std::vector<uint8_t>> out(n * n), in(n * n);
  std::vector<RequestPtr> reqs;
  for (int s = 0; s < n; ++s)
    for (int d = 0; d < n; ++d) {
      if (s == d) continue;
      out[s * n + d] = pattern(256 << 10, s * n + d);
      in[s * n + d].resize(256 << 10);
      reqs.push_back(ts[d]->irecv(s, 1, in[s * n + d].data(), in[s * n + d].size()));
      reqs.push_back(ts[s]->isend(d, 1, out[s * n + d].data(), out[s * n + d].size()));
    }
  for (auto& r : reqs) r->wait(kLong());
  for (int i = 0; i < n * n; ++i) EXPECT_TRUE(in[i] == out[i]) << i;
}

TEST(OfiTransport, UnknownProviderListsTheOnesOffered) {
  try {
    localTransports(2, {.kind = "ofi", .ofi = {.provider = "no-such-provider"}});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'no-such-provider' is not available"), std::string::npos) << m;
    EXPECT_NE(m.find("shm"), std::string::npos) << m;
  }
}

TEST(OfiTransport, ShmBetweenHostsIsRefusedNamingThem) {
  auto opts = TransportOptions{.kind = "ofi", .host = "127.0.0.1", .ofi = {.provider = "shm", .hostId = "host-a"}};
  auto t0 = createTransport({"hosts", 0, 0, 2}, opts);
  opts.ofi.hostId = "host-b";
  auto t1 = createTransport({"hosts", 0, 1, 2}, opts);
  try {
    t0->connect({t0->address(), t1->address()}, kLong());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rank 1 (host 'host-b'"), std::string::npos) << m;
    EXPECT_NE(m.find("shm works only between ranks on one host"), std::string::npos) << m;
  }
}

TEST(TransportFactory, UnknownTransportIsAnErrorNamingTheChoices) {
  try {
    createTransport({"f", 0, 0, 1}, {.kind = "carrier-pigeon", .host = "127.0.0.1"});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'carrier-pigeon' (ECCL_TRANSPORT) is not one of: auto, socket, shm, ofi, verbs"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eccl::transport
