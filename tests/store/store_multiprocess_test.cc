// Many client processes against one server: barriers, leader election, ranks that start before
// the server, and a server that dies under its clients. Ranks are forked only while this process
// has no other thread (a lock held by another thread at fork time, e.g. ASan's allocator lock,
// would deadlock the child).
#include <gtest/gtest.h>

#include <thread>

#include "apps/common/local_ranks.h"
#include "groups/store/prefix_store.h"
#include "groups/store/store_barrier.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "apps/common/child_store_server.h"
#include "base/error.h"

namespace eccl {
namespace {

constexpr Millis kTimeout{60000};

void expectAllOk(const std::vector<RankExit>& exits) {
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

class StoreProcesses : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Ranks, StoreProcesses, ::testing::Values(2, 8, 32));

TEST_P(StoreProcesses, ConcurrentBarriersAndLeaderElection) {
  const int n = GetParam();
  const int rounds = 5;
  ChildStoreServer server;  // no threads in this process while it forks the ranks
  auto exits = runLocalRanks(n, [&](int rank) {
    auto c = std::make_shared<TcpStoreClient>(server.address(), TcpStoreClientOptions{.timeout = kTimeout});
    PrefixStore s(c, "job");
    int wins = 0;
    for (int r = 0; r < rounds; ++r) {
      std::string tag = std::to_string(r);
      // Everyone proposes itself; exactly one proposal wins and all agree which.
      auto res = s.compareSet("leader/" + tag, {}, asBytes(std::to_string(rank)));
      if (res.swapped) ++wins;
      s.set("seen/" + tag + "/" + std::to_string(rank), res.current);
      storeBarrier(s, "round/" + tag, n);
      std::vector<std::string> keys;
      for (int p = 0; p < n; ++p) keys.push_back("seen/" + tag + "/" + std::to_string(p));
      for (auto& v : s.multiGet(keys))
        if (v != res.current) return 2;
    }
    s.add("wins", wins);
    storeBarrier(s, "end", n);
    return 0;
  }, {kTimeout + std::chrono::seconds(30)});
  expectAllOk(exits);
  TcpStoreClient c(server.address());
  EXPECT_EQ(toString(c.get("job/wins")), std::to_string(rounds));
  EXPECT_EQ(toString(c.get("job/barrier/end/count")), std::to_string(n));
}

TEST(StoreProcessesStart, RanksThatStartBeforeTheServerWaitForIt) {
  const int n = 8;
  uint16_t port;
  {
    Fd probe = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
    port = SocketAddress::ofSocket(probe.get()).port();
  }
  auto addr = SocketAddress::resolve("127.0.0.1", port);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < n; ++rank) {
    pids.push_back(forkChild([&, rank] {
      TcpStoreClient c(addr, TcpStoreClientOptions{.timeout = kTimeout});
      c.set("r" + std::to_string(rank), asBytes("up"));
      storeBarrier(c, "start", n);
      return 0;
    }));
  }
  std::this_thread::sleep_for(Millis(700));  // every rank is now retrying its connect
  TcpStoreServer server(TcpStoreServerOptions{.port = port});
  for (pid_t p : pids) EXPECT_TRUE(reapChild(p, kTimeout).ok());
  TcpStoreClient c(addr);
  EXPECT_EQ(c.numKeys(), n + 2);
}

TEST(StoreProcessesStart, ServerDeathFailsPendingAndLaterCallsFast) {
  ChildStoreServer server;
  TcpStoreClient c(server.address(), TcpStoreClientOptions{.timeout = Millis(1500)});
  c.set("k", asBytes("v"));
  std::thread killer([&] {
    std::this_thread::sleep_for(Millis(300));
    server.kill();
  });
  auto t0 = Clock::now();
  try {
    c.get("never-set", Millis(60000));
    FAIL() << "a GET survived its server";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConnectionClosed) << e.what();
    EXPECT_NE(std::string(e.what()).find("never-set"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(server.address().str()), std::string::npos) << e.what();
  }
  killer.join();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  t0 = Clock::now();
  try {
    c.set("k2", asBytes("v"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConnectFailed) << e.what();
    EXPECT_NE(std::string(e.what()).find("SET 'k2'"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

}  // namespace
}  // namespace eccl
