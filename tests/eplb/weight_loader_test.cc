// ExpertWeights and WeightLoader: staged changes are invisible until committed and vanish when
// dropped; readers never see a mix of two versions; ranks detect a disagreeing plan; expert
// moves across processes keep every byte (checksums after every layer); a peer that dies
// mid-transfer fails the others with its rank and leaves the old layer in force.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/policy.h"
#include "eplb/transfer_plan.h"
#include "eplb/weight_loader.h"
#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_client.h"
#include "tests/comm/local_comms.h"
#include "tests/eplb/eplb_test_util.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

using namespace testing;
constexpr auto kTimeout = std::chrono::seconds(60);

TEST(ExpertWeights, StagedChangesAppearOnlyOnCommitAndDropCleanly) {
  ExpertLayout layout = ExpertLayout::ffn(16 * 1024);
  ExpertWeights w(layout, 2, 3);
  Placement p{4, 2, 3, {LayerPlacement::fromRows({{0, 1, 2}, {3, 0, 1}}), LayerPlacement::fromRows({{0, 1, 2}, {3, 0, 1}})}};
  loadWeights(w, p, 0);
  EXPECT_EQ(verifyLayer(w, 0), "");
  const int spares = w.freeSpares();
  {
    auto st = w.stage(0, {1});
    fillExpert(st.buffer(1), layout, 0, 3);
    EXPECT_EQ(w.read(0).maps().row, (std::vector<int>{0, 1, 2}));
    EXPECT_THROW(w.stage(0, {2}), Error);  // one staging per layer
  }  // dropped
  EXPECT_EQ(w.freeSpares(), spares);
  EXPECT_EQ(verifyLayer(w, 0), "");
  auto st = w.stage(0, {1});
  fillExpert(st.buffer(1), layout, 0, 3);
  LayerPlacement next = LayerPlacement::fromRows({{0, 3, 2}, {3, 0, 1}});
  w.commit(std::move(st), layerMaps(next, 0, 4));
  EXPECT_EQ(w.read(0).maps().row, (std::vector<int>{0, 3, 2}));
  EXPECT_EQ(w.read(0).maps().log2phy, next.log2phy(0, 4));
  EXPECT_EQ(verifyLayer(w, 0), "");
  EXPECT_EQ(w.freeSpares(), spares);
  EXPECT_THROW(w.remap(0, layerMaps(p.layers[0], 0, 4)), Error) << "remap must not change the row";
}

// The engine's own tensors: one [slots, ...] array per (layer, tensor), with padding between
// slots so the stride is not the tensor size.
struct EngineTensors {
  std::vector<std::vector<uint8_t>> arrays;
  std::vector<ExternalTensor> external;
  EngineTensors(const ExpertLayout& layout, int layers, int slots) {
    for (int l = 0; l < layers; ++l)
      for (int t = 0; t < layout.tensorCount(); ++t) {
        const size_t stride = layout.tensorBytes(t) + 24;
        arrays.emplace_back(stride * slots, 0xee);
        external.push_back({arrays.back().data(), stride});
      }
  }
};

TEST(ExpertWeights, EngineOwnedTensorsChangeOnlyAtCommit) {
  ExpertLayout layout({{"w13", {8, 16}, DataType::kBFloat16}, {"w2", {16, 8}, DataType::kBFloat16}});
  EngineTensors engine(layout, 2, 3);
  ExpertWeights w(layout, 2, 3, engine.external);
  EXPECT_TRUE(w.external());
  Placement p{4, 2, 3, {LayerPlacement::fromRows({{0, 1, 2}, {3, 0, 1}}), LayerPlacement::fromRows({{0, 1, 2}, {3, 0, 1}})}};
  loadWeights(w, p, 0);  // scatters into the engine's arrays
  EXPECT_EQ(verifyLayer(w, 0), "");
  EXPECT_THROW(w.read(0).slot(0), Error);  // no block per slot
  // Slot 1's w2 lies at its stride in the engine's array, and the padding is untouched.
  const size_t w2Stride = layout.tensorBytes(1) + 24;
  EXPECT_EQ(w.read(0).tensor(1, 1), engine.arrays[1].data() + w2Stride);
  EXPECT_EQ(engine.arrays[1][w2Stride - 1], 0xee);
  const std::vector<uint8_t> before = engine.arrays[0];
  {
    auto st = w.stage(0, {1});
    fillExpert(st.buffer(1), layout, 0, 3);
  }  // dropped: the engine's memory is as it was
  EXPECT_EQ(engine.arrays[0], before);
  auto st = w.stage(0, {1});
  fillExpert(st.buffer(1), layout, 0, 3);
  EXPECT_EQ(engine.arrays[0], before) << "staging must not write the engine's tensors";
  w.commit(std::move(st), layerMaps(LayerPlacement::fromRows({{0, 3, 2}, {3, 0, 1}}), 0, 4));
  EXPECT_EQ(verifyLayer(w, 0), "");
  EXPECT_NE(engine.arrays[0], before);
  // Wrong shapes are refused, naming the tensor.
  auto bad = engine.external;
  bad[1].slotStride = 8;
  try {
    ExpertWeights x(layout, 2, 3, bad);
    ADD_FAILURE() << "a short stride was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w2'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ExpertWeights(layout, 3, 3, engine.external), Error);  // 4 tensors for 3 layers
}

TEST(ExpertWeights, ReadersNeverSeeAMixOfVersions) {
  ExpertLayout layout = ExpertLayout::ffn(8 * 1024);
  const int S = 4, E = 8;
  ExpertWeights w(layout, 1, S);
  LayerPlacement a = LayerPlacement::fromRows({{0, 1, 2, 3}, {4, 5, 6, 7}});
  LayerPlacement b = LayerPlacement::fromRows({{4, 5, 6, 7}, {0, 1, 2, 3}});
  w.load(0, layerMaps(a, 0, E), [&](int s, uint8_t* blk) { fillExpert(blk, layout, 0, a.at(0, s)); });
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    while (!stop) {
      auto view = w.read(0);
      const auto& m = view.maps();
      for (int s = 0; s < S; ++s)
        if (m.expertMap[m.row[s]] != s || view.checksum(s) != expectedChecksum(layout, 0, m.row[s])) bad++;
      reads++;
    }
  });
  for (int i = 0; i < 200; ++i) {
    const LayerPlacement& next = i % 2 ? a : b;
    auto st = w.stage(0, {0, 1, 2, 3});
    for (int s = 0; s < S; ++s) fillExpert(st.buffer(s), layout, 0, next.at(0, s));
    w.commit(std::move(st), layerMaps(next, 0, E));
  }
  while (reads < 50) std::this_thread::yield();
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0);
}

TEST(WeightLoader, RanksWithADifferentPlanAreNamed) {
  auto comms = eccl::testing::localComms(3, {.timeout = kTimeout});
  std::mt19937 rng(2);
  Placement from = randomPlacement(2, 6, 3, 3, rng), to = randomPlacement(2, 6, 3, 3, rng), odd = randomPlacement(2, 6, 3, 3, rng);
  ExpertLayout layout = ExpertLayout::ffn(4096);
  eccl::testing::onEveryRank(3, [&](int r) {
    TransferPlan plan = TransferPlan::build(from, r == 2 ? odd : to, layout);
    try {
      verifyPlanAgreement(*comms[r], plan);
      ADD_FAILURE() << "rank " << r << " accepted disagreeing plans";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank 2 has"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("rank 1 has"), std::string::npos) << e.what();
    }
  });
}

std::shared_ptr<Store> client(const ChildStoreServer& s) {
  return std::make_shared<TcpStoreClient>(s.address(), TcpStoreClientOptions{.timeout = kTimeout});
}

// Each rank: three policy-driven rebalances applied layer by layer, start() before a "forward"
// (an all_reduce on the same communicator) and finish() after it, checksums after every commit.
// Odd ranks keep their experts in engine-owned tensors, even ranks in eccl's blocks: both kinds
// move experts to each other.
TEST(WeightLoader, LayerByLayerMovesKeepEveryByteAcrossProcesses) {
  ChildStoreServer server;
  const int N = 4, S = 5, E = 16, L = 3;
  auto exits = runLocalRanks(N, [&](int rank) {
    auto g = StatelessGroup::create(client(server), "loader", rank, N, {.comm = {.timeout = kTimeout}});
    ExpertLayout layout({{"w13", {64, 96}, DataType::kBFloat16}, {"w2", {96, 32}, DataType::kBFloat16},
                         {"scale", {7}, DataType::kFloat32}});
    EngineTensors engine(layout, L, S);
    auto owned = rank % 2 ? std::make_unique<ExpertWeights>(layout, L, S, engine.external)
                          : std::make_unique<ExpertWeights>(layout, L, S);
    ExpertWeights& w = *owned;
    Placement current = initialPlacement(L, E, N, S);
    loadWeights(w, current, rank);
    WeightLoader loader(w, g->comm());
    const char* policies[] = {"default", "swift", "flash"};
    for (int cycle = 0; cycle < 3; ++cycle) {
      ExpertLoads loads = zipfLoads(L, E, 1.2, 100 + cycle);
      Placement next = makePolicy(policies[cycle])->plan({&loads, &current, N, S}).placement;
      TransferPlan plan = TransferPlan::build(current, next, layout);
      verifyPlanAgreement(g->comm(), plan);
      for (int l = 0; l < L; ++l) {
        loader.start(plan, l);
        int64_t v = 1, sum = 0;
        g->comm().allReduce(&v, &sum, 1, DataType::kInt64, ReduceOp::kSum);
        if (sum != N) return 2;
        loader.finish(l, next.layers[l], rank);
        if (auto err = verifyLayer(w, l); !err.empty()) {
          std::fprintf(stderr, "rank %d cycle %d: %s\n", rank, cycle, err.c_str());
          return 3;
        }
        if (w.read(l).maps().log2phy != next.layers[l].log2phy(rank, E)) return 4;
      }
      current = next;
    }
    return 0;
  }, {kTimeout * 2});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

TEST(WeightLoader, APeerDyingMidTransferLeavesTheOldLayer) {
  // libfabric 1.17's shm provider: a survivor's retried send can spin for good on the lock the
  // victim held when it was killed (README, known limits of the libfabric transport). No check
  // of ours can close that window; here it hung 3 of 4 full-suite runs on 2026-12-04. Over
  // tcp;ofi_rxm, sockets and eccl's own shm this test runs.
  const char* transport = std::getenv("ECCL_TRANSPORT");
  const char* provider = std::getenv("ECCL_OFI_PROVIDER");
  if (transport && std::string(transport) == "ofi" && provider && std::string(provider) == "shm")
    GTEST_SKIP() << "libfabric shm can hang a survivor whose peer is killed holding the provider's lock";
  ChildStoreServer server;
  const int N = 3, S = 4, E = 12, victim = 2;  // no redundant replicas: every expert has one holder
  auto exits = runLocalRanks(N, [&](int rank) {
    auto g = StatelessGroup::create(client(server), "dying", rank, N, {.comm = {.timeout = std::chrono::seconds(20)}});
    ExpertLayout layout = ExpertLayout::ffn(1 << 20);
    ExpertWeights w(layout, 1, S);
    Placement current = initialPlacement(1, E, N, S);
    // Ranks 0 and 1 take the victim's experts (it is their only source); the victim takes rank 0's.
    Placement next = current;
    for (int s = 0; s < S; ++s) {
      next.layers[0].set(0, s, current.layers[0].at(victim, s));
      next.layers[0].set(1, s, current.layers[0].at(victim, s));
      next.layers[0].set(victim, s, current.layers[0].at(0, s));
    }
    loadWeights(w, current, rank);
    WeightLoader loader(w, g->comm());
    TransferPlan plan = TransferPlan::build(current, next, layout);
    if (rank == victim) {  // dies once the others' transfers are in flight
      g->store()->wait({"dying/started/0", "dying/started/1"});
      ::raise(SIGKILL);
    }
    loader.start(plan, 0);
    g->store()->set("dying/started/" + std::to_string(rank), asBytes("1"));
    try {
      loader.wait();
      return 2;
    } catch (const Error& e) {
      std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
      if (std::string(e.what()).find("rank " + std::to_string(victim)) == std::string::npos) return 3;
      if (std::string(e.what()).find("keeps its old placement") == std::string::npos) return 4;
    }
    if (w.read(0).maps().row != current.layers[0].row(rank)) return 5;
    if (!verifyLayer(w, 0).empty()) return 6;
    if (!loader.stagedLayers().empty()) return 7;
    return 0;
  }, {kTimeout});
  for (auto& e : exits)
    if (e.rank != victim) {
      EXPECT_TRUE(e.ok()) << e.describe();
    }
}

}  // namespace
}  // namespace eccl::eplb
