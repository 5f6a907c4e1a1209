// ShmEndpointKeeper: libfabric shm endpoints of one process stay open while a peer in the
// process may still touch their regions. First the bookkeeping alone, then against libfabric.
#include <gtest/gtest.h>
#include <rdma/fi_tagged.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.h"
#include "transport/libfabric/ofi_endpoint.h"
#include "transport/libfabric/shm_endpoint_keeper.h"

namespace eccl::transport::ofi {
namespace {

// Stands for an endpoint's libfabric objects: counts how many were closed.
std::shared_ptr<void> objects(int& closed) {
  return std::shared_ptr<void>(new int(0), [&closed](void* p) {
    delete static_cast<int*>(p);
    ++closed;
  });
}

TEST(ShmEndpointKeeper, AnEndpointLinkedToNoOpenOneClosesAtOnce) {
  ShmEndpointKeeper k;
  int closed = 0;
  k.opened("a");
  k.release("a", objects(closed));
  EXPECT_EQ(closed, 1);
  EXPECT_FALSE(k.isParked("a"));
  k.opened("b");
  k.opened("c");
  ASSERT_TRUE(k.refer("b", "c"));
  k.release("c", objects(closed));
  EXPECT_EQ(closed, 1) << "b, open, is linked to c";
  k.release("b", objects(closed));
  EXPECT_EQ(closed, 3);
  EXPECT_EQ(k.parkedCount(), 0u);
}

// Whichever way the link was made, the first of two linked endpoints released is parked and the
// second closes both: the receiver of a first message looks its sender up by name and writes
// into the sender's region though it never inserted it, and a parked endpoint is never
// progressed, so it keeps nobody's region.
TEST(ShmEndpointKeeper, TheFirstOfTwoLinkedEndpointsIsParkedAndTheSecondClosesBoth) {
  const std::vector<std::vector<std::pair<const char*, const char*>>> ways = {
      {{"a", "b"}}, {{"b", "a"}}, {{"a", "b"}, {"b", "a"}}};
  for (const auto& links : ways) {
    ShmEndpointKeeper k;
    int closedA = 0, closedB = 0;
    k.opened("a");
    k.opened("b");
    for (auto [from, to] : links) ASSERT_TRUE(k.refer(from, to));
    k.release("a", objects(closedA));
    EXPECT_TRUE(k.isParked("a")) << links.size() << " link(s), first from " << links[0].first;
    EXPECT_EQ(closedA, 0);
    k.release("b", objects(closedB));
    EXPECT_EQ(closedA, 1);
    EXPECT_EQ(closedB, 1);
    EXPECT_EQ(k.parkedCount(), 0u);
  }
}

TEST(ShmEndpointKeeper, AReferredToEndpointIsParkedUntilItsLastOpenReferrerGoes) {
  ShmEndpointKeeper k;
  int closedA = 0, closedB = 0, closedC = 0;
  for (auto* n : {"a", "b", "c"}) k.opened(n);
  ASSERT_TRUE(k.refer("b", "a"));
  ASSERT_TRUE(k.refer("c", "a"));
  k.release("a", objects(closedA));
  EXPECT_TRUE(k.isParked("a"));
  EXPECT_EQ(closedA, 0);
  k.release("b", objects(closedB));
  EXPECT_EQ(closedB, 1);
  EXPECT_EQ(closedA, 0) << "c still refers to a";
  k.release("c", objects(closedC));
  EXPECT_EQ(closedC, 1);
  EXPECT_EQ(closedA, 1);
  EXPECT_EQ(k.parkedCount(), 0u);
}

TEST(ShmEndpointKeeper, AClosedEndpointCannotBeReferredToButAParkedOrForeignOneCan) {
  ShmEndpointKeeper k;
  int closed = 0;
  k.opened("a");
  k.opened("b");
  k.opened("c");
  k.release("a", objects(closed));
  EXPECT_FALSE(k.refer("b", "a")) << "a's region is unmapped";
  ASSERT_TRUE(k.refer("b", "c"));
  k.release("c", objects(closed));
  ASSERT_TRUE(k.isParked("c"));
  k.opened("d");
  EXPECT_TRUE(k.refer("d", "c")) << "a parked endpoint's region is still mapped";
  k.release("b", objects(closed));
  EXPECT_TRUE(k.isParked("c")) << "d refers to it now";
  EXPECT_TRUE(k.refer("d", "another process's endpoint"));
  k.release("d", objects(closed));
  EXPECT_EQ(closed, 4);
  EXPECT_FALSE(k.isParked("c"));
  EXPECT_EQ(k.parkedCount(), 0u);
}

TEST(ShmEndpointKeeper, ObjectsItDoesNotKnowAreClosedOnRelease) {
  ShmEndpointKeeper k;
  int closed = 0;
  k.release("never opened", objects(closed));
  EXPECT_EQ(closed, 1);
}

// fi_close may take a while and may come back to the keeper: objects are destroyed unlocked (a
// deleter that asks the keeper something would deadlock otherwise).
TEST(ShmEndpointKeeper, ObjectsAreDestroyedOutsideItsLock) {
  ShmEndpointKeeper k;
  int seen = -1;
  auto asking = [&] { return std::shared_ptr<void>(new int(0), [&](void* p) { delete static_cast<int*>(p); seen = int(k.parkedCount()); }); };
  k.opened("a");
  k.opened("b");
  ASSERT_TRUE(k.refer("a", "b"));
  k.release("a", asking());
  EXPECT_EQ(seen, -1);
  k.release("b", asking());
  EXPECT_EQ(seen, 0);
}

// ---- against libfabric's shm provider ----

std::string nameOf(const Endpoint& e) {
  auto n = e.name();
  return std::string(n.begin(), n.end());
}

// The file in /dev/shm that holds an endpoint's region ("fi_shm://<name>" → /dev/shm/<name>).
bool regionExists(const std::string& name) {
  std::string s = name.c_str();  // (the name carries its NUL)
  if (auto at = s.find("://"); at != std::string::npos) s = s.substr(at + 3);
  return std::filesystem::exists("/dev/shm/" + s);
}

std::unique_ptr<Endpoint> shmEndpoint() {
  try {
    return std::make_unique<Endpoint>("shm", "");
  } catch (const Error& e) {
    return nullptr;
  }
}

// A rank destroys its endpoint right after its first message to a peer in the same process:
// the message's connection request waits in the peer's queue, and the peer handles it on its
// next progress — reading the sender's region. Closed at once, that region would be unmapped
// and this test would die of SIGSEGV in libfabric (as comm_test once did under ofi shm).
TEST(ShmEndpointOverLibfabric, APeerStillProgressesAfterItsSameProcessPeerIsDestroyed) {
  auto a = shmEndpoint(), b = shmEndpoint();
  if (!a || !b) GTEST_SKIP() << "libfabric's shm provider is not available here";
  const std::string aName = nameOf(*a), bName = nameOf(*b);
  const fi_addr_t bAtA = a->insert(b->name());  // (b never inserts a: it learns a's name from the request)
  uint64_t value = 42;
  ssize_t sent = fi_tinject(a->ep(), &value, sizeof value, bAtA, 7);
  ASSERT_TRUE(sent == -FI_EAGAIN || sent == 0) << fi_strerror(static_cast<int>(-sent));  // (the request went)
  a.reset();
  EXPECT_TRUE(ShmEndpointKeeper::process().isParked(aName));
  EXPECT_TRUE(regionExists(aName));

  fi_cq_tagged_entry entries[4];
  for (int i = 0; i < 100; ++i) {  // b's progress handles a's connection request
    ssize_t n = fi_cq_read(b->cq(), entries, 4);
    ASSERT_TRUE(n == -FI_EAGAIN || n >= 0) << n;
  }
  b.reset();
  EXPECT_FALSE(ShmEndpointKeeper::process().isParked(aName));
  EXPECT_FALSE(regionExists(aName)) << "closed, and its region with it";
  EXPECT_FALSE(regionExists(bName));

  // a is gone for good: referring to it again is refused by name, not a fault.
  auto c = shmEndpoint();
  ASSERT_TRUE(c);
  try {
    c->insert(std::vector<uint8_t>(aName.begin(), aName.end()));
    FAIL() << "inserted a closed endpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("closed already"), std::string::npos) << e.what();
  }
}

// Messages still flow between open peers while a third, closed one is parked.
TEST(ShmEndpointOverLibfabric, OpenPeersKeepTalkingWhileAThirdIsParked) {
  auto a = shmEndpoint(), b = shmEndpoint(), c = shmEndpoint();
  if (!a || !b || !c) GTEST_SKIP() << "libfabric's shm provider is not available here";
  const fi_addr_t bAtA = a->insert(b->name());
  a->insert(c->name());
  c->insert(a->name());
  b->insert(a->name());
  const std::string cName = nameOf(*c);
  c.reset();
  ASSERT_TRUE(ShmEndpointKeeper::process().isParked(cName));

  uint64_t value = 7, got = 0;
  fi_context2 ctx{};
  ASSERT_EQ(fi_trecv(b->ep(), &got, sizeof got, nullptr, FI_ADDR_UNSPEC, 3, 0, &ctx), 0);
  bool sentOk = false, received = false;
  fi_cq_tagged_entry e[4];
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       !(sentOk && received) && std::chrono::steady_clock::now() < until;) {
    if (!sentOk) {
      ssize_t r = fi_tinject(a->ep(), &value, sizeof value, bAtA, 3);
      ASSERT_TRUE(r == 0 || r == -FI_EAGAIN) << r;
      sentOk = r == 0;
    }
    fi_cq_read(a->cq(), e, 4);
    if (fi_cq_read(b->cq(), e, 4) == 1) received = true;
    std::this_thread::yield();
  }
  EXPECT_TRUE(received);
  EXPECT_EQ(got, 7u);
  a.reset();
  EXPECT_FALSE(ShmEndpointKeeper::process().isParked(cName)) << "a was the last to refer to c";
  b.reset();
}

}  // namespace
}  // namespace eccl::transport::ofi
