// Elastic scale-up 2 -> 4 and scale-down 4 -> 3 across processes while the old group keeps
// serving, with every expert verified by checksum after the switch and after the rebalance that
// follows it; and a leaver killed mid-transfer: the survivors fail naming it, and every layer
// keeps its old placement.
#include <gtest/gtest.h>
#include <signal.h>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/eplb_updater.h"
#include "eplb/elastic_transition.h"
#include "groups/store/tcp_store_client.h"
#include "tests/eplb/eplb_test_util.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

using namespace testing;
constexpr auto kTimeout = std::chrono::seconds(60);
constexpr int L = 3, E = 12, S = 4;

std::shared_ptr<Store> client(const ChildStoreServer& s) {
  return std::make_shared<TcpStoreClient>(s.address(), TcpStoreClientOptions{.timeout = kTimeout});
}

// Applies `target` on the new group with the updater, one layer per serving step, and verifies.
int rebalance(ElasticGroup& g, ExpertWeights& w, const Placement& staged, const Placement& target) {
  EplbUpdater u(g.comm(), w, staged, {.heatSteps = 1000, .algorithmSteps = 10});
  u.applyPlacement(target);
  for (int i = 0; i < L + 1; ++i) {
    u.beforeForward();
    if (!serve(g.comm())) return 20;
    u.afterForward();
  }
  if (u.placement().layers != target.layers) return 21;
  if (auto err = verifyAll(w, target, g.rank()); !err.empty()) {
    std::fprintf(stderr, "rank %d after the rebalance: %s\n", g.rank(), err.c_str());
    return 22;
  }
  return 0;
}

TEST(Elastic, ScaleUpTwoToFourWhileServing) {
  ChildStoreServer server;
  const ExpertLayout layout = ExpertLayout::ffn(256 * 1024);
  auto exits = runLocalRanks(4, [&](int p) {
    GroupOptions opts{.comm = {.timeout = kTimeout}};
    ExpertWeights w(layout, L, S);
    GroupOptions next = opts;
    next.epoch = 1;  // the serving ranks' next epoch
    std::unique_ptr<ElasticGroup> g;
    ElasticPlan plan;
    if (p < 2) {
      g = ElasticGroup::join(client(server), "up", p, 2, opts);
      Placement cur = initialPlacement(L, 8, 2, S);  // 8 experts on 2 x 4 slots, no redundancy yet
      loadWeights(w, cur, p);
      ElasticTransition t(*g, w, cur, zipfLoads(L, 8, 1.2, 7), 4, {0, 1});
      int served = 0;
      while (!t.step()) {
        if (!serve(g->comm())) return 2;
        served++;
      }
      if (t.left() || g->size() != 4 || g->rank() != p) return 3;
      if (t.report().transfers == 0) return 4;
      plan = t.plan();
    } else {
      auto joined = ElasticTransition::join(client(server), "up", p, 4, w, next);
      g = std::move(joined.first);
      plan = std::move(joined.second);
    }
    if (auto err = verifyAll(w, plan.staged, g->rank()); !err.empty()) {
      std::fprintf(stderr, "rank %d after the switch: %s\n", p, err.c_str());
      return 5;
    }
    return rebalance(*g, w, plan.staged, plan.target);
  }, {kTimeout * 2});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

TEST(Elastic, ScaleDownFourToThreeWhileServing) {
  ChildStoreServer server;
  const ExpertLayout layout = ExpertLayout::ffn(256 * 1024);
  auto exits = runLocalRanks(4, [&](int p) {
    ExpertWeights w(layout, L, S);
    auto g = ElasticGroup::join(client(server), "down", p, 4, {.comm = {.timeout = kTimeout}});
    Placement cur = initialPlacement(L, E, 4, S);
    loadWeights(w, cur, p);
    // Rank 1 leaves; 2 and 3 become 1 and 2.
    ElasticTransition t(*g, w, cur, zipfLoads(L, E, 1.2, 9), 3, {0, -1, 1, 2});
    while (!t.step())
      if (!serve(g->comm())) return 2;
    if (p == 1) return t.left() ? 0 : 3;
    if (t.left() || g->size() != 3) return 4;
    if (auto err = verifyAll(w, t.placement(), g->rank()); !err.empty()) {
      std::fprintf(stderr, "rank %d after the switch: %s\n", p, err.c_str());
      return 5;
    }
    return rebalance(*g, w, t.placement(), t.plan().target);
  }, {kTimeout * 2});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

TEST(Elastic, LeaverKilledMidTransferLeavesTheOldPlacementEverywhere) {
  ChildStoreServer server;
  const ExpertLayout layout = ExpertLayout::ffn(2 << 20);
  const int victim = 3;
  auto exits = runLocalRanks(4, [&](int p) {
    ExpertWeights w(layout, L, S);
    auto g = ElasticGroup::join(client(server), "killed", p, 4, {.comm = {.timeout = std::chrono::seconds(20)}});
    Placement cur = initialPlacement(L, E, 4, S);
    loadWeights(w, cur, p);
    ElasticTransition t(*g, w, cur, zipfLoads(L, E, 1.2, 9), 3, {0, 1, 2, -1});
    if (p == victim) {
      // Agree on the plan like step() does, then die before sending: the survivors' receives
      // from it are in flight when it goes.
      TransferPlan tp = TransferPlan::build(t.plan().carrierFrom(cur), t.plan().carrierTo(cur), layout);
      verifyPlanAgreement(g->comm(), tp);
      ::raise(SIGKILL);
    }
    try {
      for (int i = 0; i < 1000 && !t.step(); ++i) serve(g->comm());
      return 2;
    } catch (const Error& e) {
      std::fprintf(stderr, "rank %d: %s\n", p, e.what());
      if (std::string(e.what()).find("rank " + std::to_string(victim)) == std::string::npos) return 3;
    }
    if (auto err = verifyAll(w, cur, p); !err.empty()) {
      std::fprintf(stderr, "rank %d: %s\n", p, err.c_str());
      return 4;
    }
    return 0;
  }, {kTimeout * 2});
  for (auto& e : exits) {
    if (e.rank != victim) {
      EXPECT_TRUE(e.ok()) << e.describe();
    }
  }
}

TEST(ElasticPlan, EncodesDecodesAndRejectsMixedChanges) {
  Placement cur = initialPlacement(2, 6, 2, 4);
  ExpertLoads loads = zipfLoads(2, 6, 1.0, 1);
  ElasticPlan up = ElasticPlan::make(cur, loads, 3, {0, 1}, "default");
  ElasticPlan back = ElasticPlan::decode(up.encode());
  EXPECT_EQ(back.staged.layers, up.staged.layers);
  EXPECT_EQ(back.target.layers, up.target.layers);
  EXPECT_EQ(back.oldToNew, up.oldToNew);
  for (int l = 0; l < 2; ++l)
    for (int r = 0; r < 2; ++r) EXPECT_EQ(up.staged.layers[l].row(r), cur.layers[l].row(r)) << "serving ranks keep their rows";
  EXPECT_THROW(ElasticPlan::make(cur, loads, 2, {1, -1}, "default"), Error);  // one leaves, one joins
  EXPECT_THROW(ElasticPlan::make(cur, loads, 1, {0, -1}, "default"), Error);  // 6 experts in 1 x 4 slots
  auto bytes = up.encode();
  bytes.pop_back();
  EXPECT_THROW(ElasticPlan::decode(bytes), Error);
}

}  // namespace
}  // namespace eccl::eplb
