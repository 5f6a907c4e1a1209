// ECCL_TRANSPORT=auto: pairs on one host use shared memory, pairs across hosts sockets (hosts
// simulated by host ids); regions and reads work over both; a break in one transport fails the
// other's operations too. And the shared-memory transport refuses a peer on another host.
#include <gtest/gtest.h>

#include <thread>

#include "base/error.h"
#include "tests/transport/expect_error.h"
#include "tests/transport/local_group.h"
#include "transport/transport_factory.h"

namespace eccl::transport {
namespace {

using eccl::testing::expectError;
using eccl::testing::kLong;
using eccl::testing::pattern;

// n ranks; rank r on host hosts[r].
std::vector<std::unique_ptr<Transport>> onHosts(const std::string& group, const std::vector<std::string>& hosts,
                                                const std::string& kind = "auto") {
  const int n = static_cast<int>(hosts.size());
  std::vector<std::unique_ptr<Transport>> ts;
  for (int r = 0; r < n; ++r) {
    TransportOptions o{.kind = kind, .host = "127.0.0.1"};
    o.shm.hostId = hosts[r];
    ts.push_back(createTransport({group, 0, r, n}, o));
  }
  eccl::testing::connectAll(ts);
  return ts;
}

bool overSharedMemory(const Transport& t, int peer) {
  return t.peerAddress(peer).find("over shared memory") != std::string::npos;
}

TEST(RoutedTransport, SharedMemoryInsideAHostSocketsBetweenHosts) {
  const int n = 4;
  auto ts = onHosts("mixed", {"host-a", "host-a", "host-b", "host-b"});
  EXPECT_TRUE(overSharedMemory(*ts[0], 1)) << ts[0]->peerAddress(1);
  EXPECT_TRUE(overSharedMemory(*ts[3], 2)) << ts[3]->peerAddress(2);
  EXPECT_FALSE(overSharedMemory(*ts[0], 2)) << ts[0]->peerAddress(2);
  EXPECT_FALSE(overSharedMemory(*ts[1], 3)) << ts[1]->peerAddress(3);
  // Every rank sends every rank (itself too) a distinct message, small and large, from and into
  // registered memory.
  for (size_t bytes : {size_t(100), size_t(256) << 10}) {
    std::vector<std::vector<uint8_t>> out(n * n), in(n * n);
    std::vector<MemoryRegion> outRegs, inRegs;
    std::vector<RequestPtr> reqs;
    for (int i = 0; i < n * n; ++i) {
      out[i] = pattern(bytes, i + 1);
      in[i].resize(bytes);
      outRegs.push_back(ts[i / n]->registerMemory(out[i].data(), bytes));
      inRegs.push_back(ts[i % n]->registerMemory(in[i].data(), bytes));
    }
    for (int s = 0; s < n; ++s)
      for (int d = 0; d < n; ++d) {
        const int i = s * n + d;
        reqs.push_back(ts[d]->irecv(s, 1, in[i].data(), bytes, &inRegs[i]));
        reqs.push_back(ts[s]->isend(d, 1, out[i].data(), bytes, &outRegs[i]));
      }
    for (auto& r : reqs) r->wait(kLong());
    for (int i = 0; i < n * n; ++i) {
      EXPECT_TRUE(in[i] == out[i]) << bytes << " bytes, pair " << i;
      ts[i / n]->deregisterMemory(outRegs[i]);
      ts[i % n]->deregisterMemory(inRegs[i]);
    }
  }
}

TEST(RoutedTransport, ReadsUseThePairsTransport) {
  auto ts = onHosts("reads", {"host-a", "host-a", "host-b"});
  auto data = pattern(1 << 20, 9);
  MemoryRegion reg = ts[0]->registerMemory(data.data(), data.size());
  RegionBlob blob = ts[0]->exportRegion(reg);
  for (int reader : {0, 1, 2}) {  // itself, a rank on its host, a rank on the other
    std::vector<uint8_t> got(4096);
    ts[reader]->iread(0, blob, 12345, got.data(), got.size(), nullptr)->wait(kLong());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin() + 12345)) << "reader " << reader;
  }
  ts[0]->deregisterMemory(reg);
  for (int reader : {1, 2}) {
    std::vector<uint8_t> got(16);
    expectError(ts[reader]->iread(0, blob, 0, got.data(), got.size(), nullptr), kLong(), {"rank 0"});
  }
  std::vector<uint8_t> junk(64, 7), got(8);
  EXPECT_THROW(ts[1]->iread(0, junk, 0, got.data(), got.size(), nullptr), Error);
}

TEST(RoutedTransport, ABreakInOneTransportFailsTheOthersOperations) {
  auto ts = onHosts("relay", {"host-a", "host-a", "host-b"});
  std::vector<uint8_t> buf(16);
  auto waiting = ts[0]->irecv(1, 7, buf.data(), buf.size());  // over shared memory: rank 1 never sends
  ts[2]->abort("operator pressed stop");                      // reaches rank 0 over sockets only
  auto start = Clock::now();
  expectError(waiting, kLong(), {"operator pressed stop"});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  // Rank 1, which shares memory with rank 0, hears of it too.
  for (auto until = Clock::now() + std::chrono::seconds(10); !ts[1]->asyncError() && Clock::now() < until;)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(ts[1]->asyncError().has_value());
  EXPECT_NE(ts[1]->asyncError()->find("operator pressed stop"), std::string::npos) << *ts[1]->asyncError();
}

// A large send cancelled before its receive was posted: the receiver agrees to drop it, the
// send fails (it was not delivered), and the receive that would have matched it fails too.
TEST(ShmTransport, ARevokedLargeSendFailsAndSoDoesItsReceive) {
  auto ts = onHosts("revoke", {"h", "h"}, "shm");
  auto big = pattern(1 << 20, 5);
  auto s = ts[0]->isend(1, 3, big.data(), big.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // announced, not read
  s->cancel();
  ASSERT_TRUE(s->test());
  EXPECT_TRUE(s->error().has_value());
  std::vector<uint8_t> r(big.size());
  expectError(ts[1]->irecv(0, 3, r.data(), r.size()), kLong(), {"rank 0", "cancelled"});
}

// Regions end with their transport: a peer's read afterwards fails, never returns freed memory.
TEST(ShmTransport, RegionsOfADestroyedTransportCannotBeRead) {
  auto ts = onHosts("gone", {"h", "h"}, "shm");
  auto data = pattern(4096, 6);
  RegionBlob blob = ts[0]->exportRegion(ts[0]->registerMemory(data.data(), data.size()));
  ts[0].reset();
  std::vector<uint8_t> got(64);
  expectError(ts[1]->iread(0, blob, 0, got.data(), got.size(), nullptr), kLong(), {"rank 0"});
}

TEST(ShmTransport, APeerOnAnotherHostIsRefusedNamingBoth) {
  try {
    onHosts("hosts", {"host-a", "host-b"}, "shm");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("is on host 'host-"), std::string::npos) << m;
    EXPECT_NE(m.find("reaches only ranks of one host"), std::string::npos) << m;
  }
}

TEST(ShmTransport, BadRingAndEagerSizesAreRefusedNamingTheVariable) {
  for (auto [ring, eager, word] : {std::tuple{size_t(5000), size_t(0), "ECCL_SHM_RING_BYTES"},
                                   std::tuple{size_t(8192), size_t(8192), "ECCL_SHM_EAGER_BYTES"}}) {
    TransportOptions o{.kind = "shm", .host = "127.0.0.1"};
    o.shm.ringBytes = ring;
    o.shm.eagerBytes = eager;
    try {
      createTransport({"sizes", 0, 0, 1}, o);
      ADD_FAILURE() << "accepted " << ring << "/" << eager;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace eccl::transport
