// Surviving rank failures: the heartbeat monitor names the rank that failed (crashed or frozen),
// revoke() fails everyone's operations, and ElasticGroup::recover() builds the survivors' next
// epoch — also when another rank dies during recovery, and a rank the others cut off learns it
// is out. Real processes; SIGKILL and SIGSTOP.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "groups/group/elastic_group.h"
#include "groups/group/group_recovery.h"
#include "groups/store/tcp_store_client.h"

namespace eccl {
namespace {

using namespace std::chrono_literals;
constexpr auto kTimeout = std::chrono::seconds(60);

std::shared_ptr<Store> client(const ChildStoreServer& s) {
  return std::make_shared<TcpStoreClient>(s.address(), TcpStoreClientOptions{.timeout = kTimeout});
}

GroupOptions options(std::chrono::milliseconds heartbeat) {
  GroupOptions o;
  o.comm.timeout = kTimeout;
  o.heartbeat.timeout = heartbeat;
  return o;
}

// Runs all_reduces until one fails; returns its error.
std::string reduceUntilFailure(Communicator& c) {
  std::vector<float> v(4096, 1.0f);
  try {
    for (;;) c.allReduce(v.data(), v.data(), v.size(), DataType::kFloat32, ReduceOp::kSum);
  } catch (const Error& e) {
    return e.what();
  }
}

// Waits (up to `limit`) until the communicator names exactly `expected` as failed.
bool namesFailed(Communicator& c, std::vector<int> expected, std::chrono::milliseconds limit = 20s) {
  for (auto until = Clock::now() + limit; Clock::now() < until; std::this_thread::sleep_for(5ms))
    if (c.failedRanks() == expected) return true;
  std::fprintf(stderr, "rank %d: failed ranks never became the expected set; have %zu\n", c.rank(), c.failedRanks().size());
  return false;
}

// All survivors sum their new ranks (a collective on the recovered group) and check it. Then they
// wait for each other through the store: a rank that exits at once says goodbye, and over
// libfabric a goodbye can overtake the last bytes of the sum still on their way to a neighbour
// (see transport.h), which is not what these tests are about.
bool recoveredGroupWorks(ElasticGroup& g, const ChildStoreServer& server) {
  int64_t v = g.rank(), sum = 0;
  g.comm().allReduce(&v, &sum, 1, DataType::kInt64, ReduceOp::kSum);
  static int calls = 0;  // (each rank is a process of its own and calls this as often as the others)
  const std::string key = "recovered/" + std::to_string(g.epoch()) + "/" + std::to_string(++calls);
  auto store = client(server);
  store->add(key, 1);
  while (store->add(key, 0) < g.size()) std::this_thread::sleep_for(5ms);
  return sum == int64_t(g.size()) * (g.size() - 1) / 2;
}

// Starts `n` ranks of group `name`; `victims` signal a pipe once built and then pause (to be
// killed or stopped by the parent); the others run fn(group, rank).
struct Ranks {
  std::vector<pid_t> pids;
  int ready[2];
};

Ranks startRanks(const ChildStoreServer& server, const std::string& name, int n, const std::set<int>& victims,
                 GroupOptions o, const std::function<int(ElasticGroup&, int)>& fn) {
  Ranks r;
  EXPECT_EQ(::pipe(r.ready), 0);
  for (int rank = 0; rank < n; ++rank)
    r.pids.push_back(forkChild([&, rank] {
      auto g = ElasticGroup::join(client(server), name, rank, n, o);
      int64_t one = 1, sum = 0;
      g->comm().allReduce(&one, &sum, 1, DataType::kInt64, ReduceOp::kSum);  // everyone is up
      if (victims.count(rank)) {
        char c = 1;
        [[maybe_unused]] auto w = ::write(r.ready[1], &c, 1);
        for (;;) ::pause();
      }
      return fn(*g, rank);
    }));
  for (size_t i = 0; i < victims.size(); ++i) {
    char c;
    EXPECT_EQ(::read(r.ready[0], &c, 1), 1);
  }
  std::this_thread::sleep_for(200ms);  // the others are inside their all_reduces
  return r;
}

void expectSurvivorsOk(const Ranks& r, const std::set<int>& victims) {
  for (size_t rank = 0; rank < r.pids.size(); ++rank) {
    if (victims.count(static_cast<int>(rank))) continue;
    RankExit e = reapChild(r.pids[rank], 90s);
    EXPECT_TRUE(e.ok()) << "rank " << rank << ": " << e.describe();
  }
  for (int v : victims) {
    ::kill(r.pids[v], SIGKILL);
    reapChild(r.pids[v], 10s);
  }
  ::close(r.ready[0]);
  ::close(r.ready[1]);
}

TEST(Liveness, ACrashedRankIsNamedByEverySurvivorAndTheGroupRecoversWithoutIt) {
  ChildStoreServer server;
  const std::set<int> victims{2};
  auto r = startRanks(server, "crash", 4, victims, options(5s), [&](ElasticGroup& g, int rank) {
    std::string err = reduceUntilFailure(g.comm());
    if (!namesFailed(g.comm(), {2})) return 10;
    if (g.comm().asyncError() == std::nullopt) return 11;
    auto res = g.recover({.joinTimeout = 10s, .buildTimeout = 30s});
    if (res.failed != std::vector<int>{2} || res.oldToNew != std::vector<int>{0, 1, -1, 2}) return 12;
    if (g.size() != 3 || g.rank() != res.oldToNew[rank] || g.epoch() != 2 || res.rounds != 1) return 13;
    for (int i = 0; i < 3; ++i)
      if (!recoveredGroupWorks(g, server)) return 14;
    std::fprintf(stderr, "rank %d: failed with '%s'; recovered in %.3f s agree + %.3f s build\n", rank, err.c_str(),
                 res.agreeSeconds, res.buildSeconds);
    return 0;
  });
  ::kill(r.pids[2], SIGKILL);
  expectSurvivorsOk(r, victims);
}

TEST(Liveness, AFrozenRankIsBlamedByEverySurvivorNotTheNeighbourTheyWaitOn) {
  ChildStoreServer server;
  const std::set<int> victims{2};
  auto r = startRanks(server, "frozen", 4, victims, options(500ms), [&](ElasticGroup& g, int rank) {
    const auto t0 = Clock::now();
    std::string err = reduceUntilFailure(g.comm());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    std::fprintf(stderr, "rank %d after %lld ms: %s\n", rank, static_cast<long long>(took.count()), err.c_str());
    if (!namesFailed(g.comm(), {2})) return 10;
    if (err.find("rank 2") == std::string::npos) return 11;  // the evidence, not a neighbour's timeout
    if (took > 30s) return 12;                                // well before the 60 s operation timeout
    auto res = g.recover({.joinTimeout = 10s, .buildTimeout = 30s});
    if (res.failed != std::vector<int>{2} || !recoveredGroupWorks(g, server)) return 13;
    return 0;
  });
  ::kill(r.pids[2], SIGSTOP);
  expectSurvivorsOk(r, victims);
}

TEST(Liveness, TwoRanksKilledAtOnceAreBothFoldedIntoOneRecovery) {
  ChildStoreServer server;
  const std::set<int> victims{1, 4};
  auto r = startRanks(server, "two", 6, victims, options(5s), [&](ElasticGroup& g, int) {
    reduceUntilFailure(g.comm());
    auto res = g.recover({.joinTimeout = 10s, .buildTimeout = 30s});
    if (res.failed != std::vector<int>{1, 4} || g.size() != 4) return 10;
    return recoveredGroupWorks(g, server) ? 0 : 11;
  });
  ::kill(r.pids[1], SIGKILL);
  ::kill(r.pids[4], SIGKILL);
  expectSurvivorsOk(r, victims);
}

TEST(Liveness, ADestroyedGroupIsNotAFailure) {
  ChildStoreServer server;
  auto exits = runLocalRanks(2, [&](int rank) {
    auto g = ElasticGroup::join(client(server), "bye", rank, 2, options(200ms));
    g->comm().barrier();
    if (rank == 1) return 0;  // destroys its group and exits cleanly
    std::this_thread::sleep_for(1500ms);
    return g->comm().failedRanks().empty() ? 0 : 10;
  }, {kTimeout});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

TEST(Revoke, FailsPendingOperationsOnEveryRankAndLeavesTheCommunicatorQueryable) {
  ChildStoreServer server;
  auto exits = runLocalRanks(3, [&](int rank) {
    auto store = client(server);
    auto g = ElasticGroup::join(store, "revoked", rank, 3, options(5s));
    auto& c = g->comm();
    int64_t x = 0;
    auto pending = c.irecv(&x, sizeof x, (rank + 1) % 3, 77);  // never sent
    if (rank == 0) {
      std::this_thread::sleep_for(200ms);
      c.revoke("test revoke", {2});
    }
    std::string error;
    try {
      pending.wait();
      return 10;
    } catch (const Error& e) {
      error = e.what();
    }
    // Nobody exits before everyone has heard the revoke (an early exit would be a closed
    // connection to the others, which is not what this test is about).
    store->add("revoked/heard", 1);
    while (store->add("revoked/heard", 0) < 3) std::this_thread::sleep_for(5ms);
    if (error.find("revoked by rank 0: test revoke") == std::string::npos) return 11;
    try {  // later operations fail too
      c.barrier();
      return 12;
    } catch (const Error&) {
    }
    if (rank == 0 && (!c.revoked() || c.failedRanks() != std::vector<int>{2})) return 13;
    if (!c.asyncError()) return 14;
    return 0;
  }, {kTimeout});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

TEST(Recovery, ARankFrozenPastTheHeartbeatLearnsItIsOutWhenItWakes) {
  ChildStoreServer server;
  int done[2];
  ASSERT_EQ(::pipe(done), 0);
  const std::set<int> victims{1};
  Ranks r;
  ASSERT_EQ(::pipe(r.ready), 0);
  for (int rank = 0; rank < 3; ++rank)
    r.pids.push_back(forkChild([&, rank] {
      auto g = ElasticGroup::join(client(server), "cutoff", rank, 3, options(300ms));
      g->comm().barrier();
      if (rank == 1) {
        char c = 1;
        [[maybe_unused]] auto w = ::write(r.ready[1], &c, 1);
        ::raise(SIGSTOP);  // frozen until the others have recovered without us
        try {
          reduceUntilFailure(g->comm());
          g->recover({.joinTimeout = 10s, .buildTimeout = 30s});
          return 10;
        } catch (const Error& e) {
          return e.code() == ErrorCode::kAborted && std::string(e.what()).find("out of the group") != std::string::npos ? 0 : 11;
        }
      }
      reduceUntilFailure(g->comm());
      auto res = g->recover({.joinTimeout = 10s, .buildTimeout = 30s});
      bool ok = res.failed == std::vector<int>{1} && recoveredGroupWorks(*g, server);
      if (rank == 0) {
        char c = 1;
        [[maybe_unused]] auto w = ::write(done[1], &c, 1);
      }
      return ok ? 0 : 12;
    }));
  char c;
  ASSERT_EQ(::read(r.ready[0], &c, 1), 1);
  ASSERT_EQ(::read(done[0], &c, 1), 1);
  ::kill(r.pids[1], SIGCONT);
  for (int rank = 0; rank < 3; ++rank) {
    RankExit e = reapChild(r.pids[rank], 90s);
    EXPECT_TRUE(e.ok()) << "rank " << rank << ": " << e.describe();
  }
  for (int fd : {done[0], done[1], r.ready[0], r.ready[1]}) ::close(fd);
}

TEST(Recovery, ARankDyingAfterTheAgreementIsFoldedInBySecondRound) {
  ChildStoreServer server;
  const int n = 5;
  const std::set<int> victims{0};
  auto r = startRanks(server, "second", n, victims, options(5s), [&](ElasticGroup& g, int rank) {
    reduceUntilFailure(g.comm());
    if (rank == 3) {
      // Take part in the agreement as recover() would, then die before the build.
      AgreementRound round{"second", 0, 0, 3, n, 2, 10s};
      agreeOnFailures(client(server), round, [] { return std::set<int>{0}; });
      ::raise(SIGKILL);
    }
    auto res = g.recover({.joinTimeout = 10s, .buildTimeout = 40s});
    std::fprintf(stderr, "rank %d: %d rounds, agree %.3f s, build %.3f s\n", rank, res.rounds, res.agreeSeconds, res.buildSeconds);
    if (res.failed != std::vector<int>{0, 3} || res.rounds != 2 || g.epoch() != 3 || g.size() != 3) return 10;
    return recoveredGroupWorks(g, server) ? 0 : 11;
  });
  ::kill(r.pids[0], SIGKILL);
  for (int rank = 1; rank < n; ++rank) {
    RankExit e = reapChild(r.pids[rank], 90s);
    if (rank != 3) {
      EXPECT_TRUE(e.ok()) << "rank " << rank << ": " << e.describe();
    }
  }
  reapChild(r.pids[0], 10s);
  ::close(r.ready[0]);
  ::close(r.ready[1]);
}

TEST(Recovery, ARankAloneCannotDecideThatEveryoneElseFailed) {
  ChildStoreServer server;
  AgreementRound round{"alone", 0, 0, 2, 3, 2, 300ms};
  const auto t0 = Clock::now();
  try {
    agreeOnFailures(client(server), round, [] { return std::set<int>{0, 1}; });
    ADD_FAILURE() << "a lone rank decided";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAborted);
    EXPECT_NE(std::string(e.what()).find("cut off"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - t0, 10s);
  // And nothing was decided for the others, who may still recover without it.
  EXPECT_FALSE(client(server)->tryGet("alone/recover/0/0/decision").has_value());
}

TEST(Recovery, TheBuildOutcomeIsDecidedOnceForEveryMember) {
  ChildStoreServer server;
  auto store = client(server);
  // Everyone built it: ok for all.
  store->set("ok/4/built/1", asBytes("1"));
  EXPECT_FALSE(agreeOnBuild(store, "ok", 4, 0, 2, Deadline::after(10s)).has_value());
  EXPECT_FALSE(agreeOnBuild(store, "ok", 4, 1, 2, Deadline::after(10s)).has_value());
  // A member died mid-build (the watch set "conflict") after rank 0 built it: the build is off
  // for rank 0, and stays off for rank 1 even though, arriving late, it finds every key.
  store->set("off/4/conflict", asBytes("rank 3 failed while it was being built"));
  auto first = agreeOnBuild(store, "off", 4, 0, 2, Deadline::after(10s));
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->find("rank 3 failed"), std::string::npos) << *first;
  auto late = agreeOnBuild(store, "off", 4, 1, 2, Deadline::after(10s));
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(*late, *first);
  // Nobody else arrives: off at the deadline, not a hang.
  EXPECT_TRUE(agreeOnBuild(store, "late", 4, 0, 2, Deadline::after(300ms)).has_value());
}

TEST(Recovery, WithoutTheStoreRecoveryFailsSayingSoInsteadOfHanging) {
  ChildStoreServer server;
  const std::set<int> victims{1};
  auto r = startRanks(server, "nostore", 3, victims, options(5s), [&](ElasticGroup& g, int) {
    reduceUntilFailure(g.comm());
    std::this_thread::sleep_for(500ms);  // the store is gone by now
    try {
      g.recover({.joinTimeout = 5s, .buildTimeout = 10s});
      return 10;
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return std::string(e.what()).find(server.address().str()) != std::string::npos ? 0 : 11;
    }
  });
  ::kill(r.pids[1], SIGKILL);
  server.kill();
  expectSurvivorsOk(r, victims);
}

}  // namespace
}  // namespace eccl
