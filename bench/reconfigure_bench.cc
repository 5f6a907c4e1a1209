// Elastic reconfiguration time: N -> M ranks (default 4 -> 8, and 8 -> 4 with --from 8 --to 4)
// with one MoE layer of 64 experts x 4 MiB, S = 64 / min(N, M) slots per rank, while the old
// group keeps serving (an 8-byte all_reduce per step). Measures, on the slowest rank: the
// transition (standby build + moving experts + switch) and the rebalance to the policy's
// placement that follows on the new group.
//   reconfigure_bench [--from 4] [--to 8] [--experts 64] [--expert-bytes 4194304] [--iterations 3]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/elastic_transition.h"
#include "eplb/eplb_updater.h"
#include "groups/store/tcp_store_client.h"

namespace {

using namespace eccl;
using namespace eccl::eplb;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void serve(Communicator& c) {
  int64_t v = 1;
  c.allReduce(&v, &v, 1, DataType::kInt64, ReduceOp::kSum);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"elastic reconfiguration time"};
  int from = 4, to = 8, E = 64, iters = 3;
  size_t bytes = 4 << 20;
  app.add_option("--from", from)->check(CLI::Range(1, 64));
  app.add_option("--to", to)->check(CLI::Range(1, 64));
  app.add_option("--experts", E)->check(CLI::Range(1, 4096));
  app.add_option("--expert-bytes", bytes)->check(CLI::Range(size_t(1536), size_t(1) << 30));
  app.add_option("--iterations", iters)->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  if (from == to) {
    std::fprintf(stderr, "--from and --to must differ\n");
    return 2;
  }
  const int S = (E + std::min(from, to) - 1) / std::min(from, to), procs = std::max(from, to);
  std::vector<int> map(from);
  for (int r = 0; r < from; ++r) map[r] = r < to ? r : -1;
  ExpertLayout layout = ExpertLayout::ffn(bytes);
  std::printf("%d -> %d ranks, %d experts x %.2f MiB, %d slots per rank\n", from, to, E, layout.payloadBytes() / 1048576.0, S);
  for (int it = 0; it < iters; ++it) {
    ChildStoreServer server;
    auto exits = runLocalRanks(procs, [&](int p) {
      auto store = std::make_shared<TcpStoreClient>(server.address());
      ExpertWeights w(layout, 1, S);
      std::unique_ptr<ElasticGroup> g;
      ElasticPlan plan;
      double transition = 0;
      int served = 0;
      if (p < from) {
        g = ElasticGroup::join(store, "bench", p, from);
        Placement cur = initialPlacement(1, E, from, S);
        w.load(0, layerMaps(cur.layers[0], p, E), [&](int s, uint8_t* b) { fillExpert(b, layout, 0, cur.layers[0].at(p, s)); });
        ExpertLoads loads{E, {LayerLoads{std::vector<double>(E, 1.0), {}}}};
        for (int e = 0; e < E; ++e) loads.layers[0].total[e] = 1000.0 / (e + 1);  // Zipf-skewed
        g->comm().barrier();
        auto t0 = Clock::now();
        ElasticTransition t(*g, w, cur, loads, to, map, "swift");
        while (!t.step()) {
          serve(g->comm());
          served++;
        }
        transition = since(t0);
        if (t.left()) return 0;
        plan = t.plan();
      } else {
        auto joined = ElasticTransition::join(store, "bench", p, to, w, {.epoch = 1});
        g = std::move(joined.first);
        plan = std::move(joined.second);
      }
      auto t1 = Clock::now();
      EplbUpdater u(g->comm(), w, plan.staged, {.heatSteps = 1000});
      u.applyPlacement(plan.target);
      u.beforeForward();
      serve(g->comm());
      u.afterForward();
      double rebalance = since(t1);
      auto rep = u.takeReport();
      double v[2] = {transition, rebalance};
      g->comm().allReduce(v, v, 2, DataType::kFloat64, ReduceOp::kMax);
      if (g->rank() == 0)
        std::printf("  run %d: transition %.0f ms (served %d steps meanwhile), rebalance on %d ranks %.0f ms (%.1f MiB), "
                    "total %.0f ms\n",
                    it + 1, v[0] * 1e3, served, to, v[1] * 1e3, rep ? rep->networkBytes / 1048576.0 : 0.0, (v[0] + v[1]) * 1e3);
      std::fflush(stdout);
      return 0;
    }, {std::chrono::seconds(600)});
    if (!allRanksOk(exits)) return 1;
  }
  return 0;
}
