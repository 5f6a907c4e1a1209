// Time for N ranks (processes) to build a stateless group: publish addresses in the store, read
// everyone's, connect the full mesh and handshake — what a standby rebuild costs. The store runs
// in its own process and is already up; the ranks are released together.
#include <benchmark/benchmark.h>

#include "bench/bench_store.h"
#include "bench/timed_ranks.h"
#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_client.h"

namespace eccl::bench {
namespace {

void BM_GroupBuild(benchmark::State& state) {
  const int ranks = static_cast<int>(state.range(0));
  const SocketAddress storeAddr = benchStore().address();  // started here, before any fork
  uint64_t epoch = 0;
  for (auto _ : state) {
    const uint64_t e = epoch++;
    double secs = runTimedRanks(ranks, [&](int rank, const std::function<void()>& ready) {
      auto store = std::make_shared<TcpStoreClient>(storeAddr);
      store->ping();  // a standby build reuses the process's store connection
      ready();
      auto g = StatelessGroup::create(store, "bench", rank, ranks, {.epoch = e});
      g->comm().barrier();  // built and usable everywhere
    });
    state.SetIterationTime(secs);
  }
  state.SetLabel(std::to_string(ranks) + " ranks: publish, gather, full-mesh connect, barrier");
}
BENCHMARK(BM_GroupBuild)->Arg(2)->Arg(4)->Arg(8)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace eccl::bench

BENCHMARK_MAIN();
