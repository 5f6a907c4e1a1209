// The updater's state machine step by step, and the updater across processes: loads recorded,
// gathered, planned in the background, applied one layer per step with checksums intact, and
// the map exported.
#include <gtest/gtest.h>

#include <thread>

#include <fstream>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/eplb_json.h"
#include "eplb/eplb_updater.h"
#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_client.h"
#include "tests/eplb/eplb_test_util.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

using Phase = UpdaterSchedule::Phase;
using Action = UpdaterSchedule::Action;

TEST(UpdaterSchedule, CollectsPlansAppliesOneLayerPerStepAndRestarts) {
  UpdaterSchedule s(5, 3);
  for (int cycle = 0; cycle < 2; ++cycle) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(s.beforeForward(), -1);
      EXPECT_TRUE(s.recording());
      EXPECT_EQ(s.afterForward(), Action::kNone);
    }
    EXPECT_EQ(s.afterForward(), Action::kGatherAndPlan) << "after the H-th step";
    EXPECT_EQ(s.phase(), Phase::kPlanning);
    EXPECT_FALSE(s.recording());
    EXPECT_EQ(s.afterForward(), Action::kNone);
    EXPECT_EQ(s.afterForward(), Action::kNone);
    EXPECT_EQ(s.afterForward(), Action::kCheckPlan) << "after A steps";
    s.planNotReady();
    EXPECT_EQ(s.afterForward(), Action::kCheckPlan) << "asks again every step while the policy is late";
    s.planReady(3);
    for (int layer = 0; layer < 3; ++layer) {
      EXPECT_EQ(s.phase(), Phase::kApplying);
      EXPECT_EQ(s.beforeForward(), layer);
      EXPECT_EQ(s.afterForward(), Action::kFinishLayer);
      s.layerDone();
    }
    EXPECT_EQ(s.phase(), Phase::kCollecting);
    EXPECT_EQ(s.cycle(), cycle + 1);
  }
  // A plan that changes nothing goes straight back to collecting.
  for (int i = 0; i < 5; ++i) s.afterForward();
  for (int i = 0; i < 3; ++i) s.afterForward();
  s.planReady(0);
  EXPECT_EQ(s.phase(), Phase::kCollecting);
  EXPECT_THROW(s.layerDone(), Error);
  EXPECT_THROW(s.planReady(1), Error);
  EXPECT_THROW(UpdaterSchedule(0, 1), Error);
}

TEST(EplbUpdater, RebalancesSkewedLoadAcrossProcesses) {
  ChildStoreServer server;
  const int N = 3, L = 2, E = 9, S = 4;
  char dir[] = "/tmp/eccl-updater-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string mapPath = std::string(dir) + "/map.json";
  auto exits = runLocalRanks(N, [&](int rank) {
    auto store = std::make_shared<TcpStoreClient>(server.address(), TcpStoreClientOptions{.timeout = std::chrono::seconds(60)});
    auto g = StatelessGroup::create(store, "updater", rank, N, {.comm = {.timeout = std::chrono::seconds(60)}});
    ExpertWeights w(ExpertLayout::ffn(64 * 1024), L, S);
    Placement cur = initialPlacement(L, E, N, S);
    testing::loadWeights(w, cur, rank);
    EplbUpdater u(g->comm(), w, cur, {.heatSteps = 8, .algorithmSteps = 2, .policy = "default", .episodes = 4, .exportMapPath = mapPath});
    std::optional<CycleReport> report;
    // The policy runs on a background thread and the ranks ask for it step by step: give it
    // wall time (a forward pass takes some), not a fixed number of steps, which fast steps on a
    // loaded machine used up before the policy finished.
    const auto giveUp = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (int step = 0; !report && std::chrono::steady_clock::now() < giveUp; ++step) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the forward pass
      u.beforeForward();
      for (int l = 0; l < L; ++l) {  // expert 0 is hot everywhere; every token goes to a replica here
        auto view = w.read(l);
        std::vector<double> perSlot(S);
        for (int s = 0; s < S; ++s) perSlot[s] = view.maps().row[s] == 0 ? 100.0 : 1.0;
        u.record(l, perSlot);
      }
      int64_t v = 1, sum = 0;
      g->comm().allReduce(&v, &sum, 1, DataType::kInt64, ReduceOp::kSum);
      u.afterForward();
      report = u.takeReport();
    }
    if (!report) return 2;
    if (!(report->imbalanceAfter < report->imbalanceBefore)) return 3;
    if (report->layersChanged == 0 || report->networkBytes != report->minimumBytes) return 4;
    for (int l = 0; l < L; ++l)
      if (auto err = testing::verifyLayer(w, l); !err.empty()) return 5;
    if (u.placement().layers[0].replicaCounts(E)[0] < 2) return 6;  // the hot expert got replicas
    return 0;
  }, {std::chrono::seconds(120)});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
  Placement exported = readExpertMap(mapPath, E);
  EXPECT_GE(exported.layers[0].replicaCounts(E)[0], 2);
  std::remove(mapPath.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace eccl::eplb
