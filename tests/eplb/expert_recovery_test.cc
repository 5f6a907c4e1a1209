// Re-placing experts after a rank failure: the recovery plan keeps every surviving replica and
// restores each lost expert once; the checkpoint file refuses damage; and across processes, a
// rank SIGKILLed during an EPLB layer transfer or during an elastic transition is recovered
// from — every replica verified by checksum, no layer half committed, then the policy's target.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "eplb/elastic_plan.h"
#include "eplb/elastic_transition.h"
#include "eplb/eplb_updater.h"
#include "eplb/expert_recovery.h"
#include "eplb/weight_source.h"
#include "groups/store/tcp_store_client.h"
#include "tests/eplb/eplb_test_util.h"

namespace eccl::eplb {
namespace {

using namespace testing;
using namespace std::chrono_literals;
constexpr auto kTimeout = std::chrono::seconds(60);
constexpr int L = 3, E = 12, S = 4;

std::string scratch(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/eccl-" + name + "-" + std::to_string(::getpid());
}

std::shared_ptr<Store> client(const ChildStoreServer& s) {
  return std::make_shared<TcpStoreClient>(s.address(), TcpStoreClientOptions{.timeout = kTimeout});
}

TEST(RecoveryPlan, KeepsEverySurvivingReplicaAndRestoresEachLostExpertOnce) {
  Placement cur = initialPlacement(L, E, 4, S);  // rank 3 holds the redundant copies of 0..3
  Placement survivors = renumberRanks(cur, {0, -1, 1, 2}, 3);  // rank 1 (experts 4..7) failed
  auto plan = RecoveryPlan::make(survivors, zipfLoads(L, E, 1.2, 3), "swift");
  EXPECT_EQ(plan.lost.size(), size_t(4 * L));
  for (int l = 0; l < L; ++l) {
    auto counts = plan.restored.layers[l].replicaCounts(E);
    for (int e = 0; e < E; ++e) EXPECT_GE(counts[e], 1) << "layer " << l << " expert " << e;
    auto before = survivors.layers[l].replicaCounts(E);
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < S; ++s) {
        const int was = survivors.layers[l].at(r, s), now = plan.restored.layers[l].at(r, s);
        if (was == now) continue;
        EXPECT_GE(before[was], 2) << "only redundant replicas make room";  // never the last copy
        EXPECT_EQ(before[now], 0) << "only lost experts are restored";
      }
  }
  std::map<std::pair<int, int>, int> restoredOnce;
  for (auto& x : plan.lost) {
    EXPECT_EQ(plan.restored.layers[x.layer].at(x.rank, x.slot), x.expert);
    EXPECT_EQ(++restoredOnce[std::make_pair(x.layer, x.expert)], 1);
  }
  plan.target.validate();
  // Nothing lost: nothing to restore, and routing is unchanged.
  auto none = RecoveryPlan::make(renumberRanks(cur, {0, 1, 2, -1}, 3), zipfLoads(L, E, 1.2, 3), "swift");
  EXPECT_TRUE(none.lost.empty());
  EXPECT_EQ(none.restored.layers, none.survivors.layers);
}

TEST(RecoveryPlan, LostExpertsThatCannotFitAreRefusedNamingTheLayer) {
  Placement cur = initialPlacement(1, 12, 3, 5);  // 15 slots, 3 redundant
  try {
    RecoveryPlan::make(renumberRanks(cur, {0, -1, 1}, 2), zipfLoads(1, 12, 1.0, 1), "swift");  // 5 lost, 10 slots left
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("layer 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no redundant replica left"), std::string::npos) << e.what();
  }
}

TEST(CheckpointFile, RoundTripsEveryExpertAndRefusesDamageOrAnotherLayout) {
  const ExpertLayout layout = ExpertLayout::ffn(64 * 1024);
  const std::string path = scratch("ckpt");
  CheckpointFile::write(path, layout, 2, 5, [&](int l, int e, uint8_t* b) { fillExpert(b, layout, l, e); });
  {
    CheckpointFile f(path, layout);
    EXPECT_EQ(f.layers(), 2);
    EXPECT_EQ(f.experts(), 5);
    std::vector<uint8_t> block(layout.blockBytes());
    for (int l = 0; l < 2; ++l)
      for (int e = 0; e < 5; ++e) {
        f.read(l, e, block.data());
        EXPECT_EQ(expertChecksum(block.data(), layout), expectedChecksum(layout, l, e));
      }
    EXPECT_THROW(f.read(2, 0, block.data()), Error);
    EXPECT_THROW(f.read(0, 5, block.data()), Error);
  }
  try {
    CheckpointFile(path, ExpertLayout::ffn(128 * 1024));
    ADD_FAILURE() << "another layout was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  {  // one flipped byte in the last expert's payload
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    char c;
    f.read(&c, 1);
    f.seekp(-100, std::ios::end);
    c ^= 0x5a;
    f.write(&c, 1);
  }
  CheckpointFile f(path, layout);
  std::vector<uint8_t> block(layout.blockBytes());
  f.read(0, 0, block.data());
  try {
    f.read(1, 4, block.data());
    ADD_FAILURE() << "a damaged expert was served";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert 4 of layer 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  ::unlink(path.c_str());
  try {
    CheckpointFile(path, layout);
    ADD_FAILURE() << "a missing file was opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSystem);
  }
}

// After the failure: recover the group, restore from the checkpoint, check every replica, then
// apply the policy's target with an updater and check again. 0 when all is well.
int recoverAndRebalance(ElasticGroup& g, ExpertWeights& w, const std::string& checkpoint, int expectedSize) {
  auto res = g.recover({.joinTimeout = 10s, .buildTimeout = 30s});
  if (g.size() != expectedSize) return 30;
  auto plan = planRecovery(g.comm(), w, E, zipfLoads(L, E, 1.1, 5), "swift");
  CheckpointFile source(checkpoint, w.layout());
  auto report = restoreLostExperts(w, plan, g.rank(), source);
  double reloaded = report.reloaded;
  g.comm().allReduce(&reloaded, &reloaded, 1, DataType::kFloat64, ReduceOp::kSum);
  if (static_cast<size_t>(reloaded) != plan.lost.size()) return 31;
  if (auto err = verifyAll(w, plan.restored, g.rank()); !err.empty()) {
    std::fprintf(stderr, "rank %d after the restore: %s\n", g.rank(), err.c_str());
    return 32;
  }
  EplbUpdater u(g.comm(), w, plan.restored, {.heatSteps = 1000, .algorithmSteps = 10});
  u.applyPlacement(plan.target);
  for (int i = 0; i < L + 1; ++i) {
    u.beforeForward();
    if (!serve(g.comm())) return 33;
    u.afterForward();
  }
  if (auto err = verifyAll(w, plan.target, g.rank()); !err.empty()) {
    std::fprintf(stderr, "rank %d after the rebalance: %s\n", g.rank(), err.c_str());
    return 34;
  }
  std::fprintf(stderr, "rank %d: recovered (lost %zu experts, this rank reloaded %d)\n", g.rank(), plan.lost.size(), report.reloaded);
  return 0;
}

struct CheckpointForTest {
  ExpertLayout layout;
  std::string path;
  explicit CheckpointForTest(size_t expertBytes) : layout(ExpertLayout::ffn(expertBytes)), path(scratch("recovery-ckpt")) {
    CheckpointFile::write(path, layout, L, E, [&](int l, int e, uint8_t* b) { fillExpert(b, layout, l, e); });
  }
  ~CheckpointForTest() { ::unlink(path.c_str()); }
};

TEST(ExpertRecovery, ARankKilledDuringALayerTransferLosesNoLayerHalfCommitted) {
  ChildStoreServer server;
  CheckpointForTest ckpt(512 * 1024);
  const int victim = 1;
  auto exits = runLocalRanks(4, [&](int p) {
    ExpertWeights w(ckpt.layout, L, S);
    auto g = ElasticGroup::join(client(server), "transfer", p, 4, {.comm = {.timeout = kTimeout}});
    Placement cur = initialPlacement(L, E, 4, S);
    loadWeights(w, cur, p);
    std::mt19937 rng(11);
    Placement target = randomPlacement(L, E, 4, S, rng);
    {
      EplbUpdater u(g->comm(), w, cur, {.heatSteps = 1000, .algorithmSteps = 10});
      u.applyPlacement(target);
      try {
        for (int i = 0; i < 100; ++i) {
          u.beforeForward();
          if (p == victim && u.transferInFlight() && u.layersCommitted() == 1) ::raise(SIGKILL);  // mid layer 2
          if (!serve(g->comm())) return 2;
          u.afterForward();
        }
        return 3;
      } catch (const Error& e) {
        std::fprintf(stderr, "rank %d: %s\n", p, e.what());
      }
      // No half-committed layer: every layer is either wholly old or wholly new.
      for (int l = 0; l < L; ++l)
        if (auto err = verifyLayer(w, l); !err.empty()) return 4;
    }
    return recoverAndRebalance(*g, w, ckpt.path, 3);
  }, {kTimeout * 2});
  for (auto& e : exits)
    if (e.rank != victim) {
      EXPECT_TRUE(e.ok()) << e.describe();
    }
}

TEST(ExpertRecovery, ARankKilledDuringAnElasticScaleDownIsRecoveredFrom) {
  ChildStoreServer server;
  CheckpointForTest ckpt(256 * 1024);
  for (int phase = 0; phase < 2; ++phase) {  // 0: while the standby group is built; 1: once it is built (before the switch)
    const int victim = 2;
    const std::string name = phase == 0 ? "standby" : "moving";
    auto exits = runLocalRanks(4, [&](int p) {
      ExpertWeights w(ckpt.layout, L, S);
      auto g = ElasticGroup::join(client(server), name, p, 4, {.comm = {.timeout = kTimeout}});
      Placement cur = initialPlacement(L, E, 4, S);
      loadWeights(w, cur, p);
      {
        ElasticTransition t(*g, w, cur, zipfLoads(L, E, 1.2, 9), 3, {0, 1, 2, -1});  // rank 3 leaves
        if (p == victim && phase == 0) ::raise(SIGKILL);
        if (p == victim && phase == 1) {
          while (!g->standbyReady()) std::this_thread::sleep_for(1ms);
          ::raise(SIGKILL);
        }
        try {
          for (int i = 0; i < 1000; ++i) {
            if (t.step()) return 2;  // the switch cannot happen without the victim
            if (!serve(g->comm())) return 3;
          }
          return 4;
        } catch (const Error& e) {
          std::fprintf(stderr, "rank %d: %s\n", p, e.what());
        }
      }
      return recoverAndRebalance(*g, w, ckpt.path, 3);  // rank 3 was leaving, but it is a survivor now
    }, {kTimeout * 2});
    for (auto& e : exits)
      if (e.rank != victim) {
        EXPECT_TRUE(e.ok()) << "phase " << phase << ": " << e.describe();
      }
  }
}

}  // namespace
}  // namespace eccl::eplb
