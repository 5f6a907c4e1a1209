// Rendezvous store benchmarks: GET round trip from one client, ops/s from 8 client processes,
// and time for N ranks to rendezvous (all set an address, all wait for all).
// The server runs in its own process, as it does for real ranks.
#include <benchmark/benchmark.h>

#include <memory>

#include "bench/bench_store.h"
#include "bench/timed_ranks.h"
#include "groups/store/prefix_store.h"
#include "groups/store/tcp_store_client.h"

namespace eccl::bench {
namespace {

void BM_StoreGetRoundTrip(benchmark::State& state) {
  TcpStoreClient c(benchStore().address());
  c.set("bench/key", Bytes(static_cast<size_t>(state.range(0)), 1));
  for (auto _ : state) benchmark::DoNotOptimize(c.get("bench/key"));
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("1 client, value " + std::to_string(state.range(0)) + " B");
}
BENCHMARK(BM_StoreGetRoundTrip)->Arg(8)->Arg(4096)->UseRealTime();

void BM_StoreOpsManyClients(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  const int opsPerClient = 5000;
  const SocketAddress addr = benchStore().address();  // started here, before any fork
  TcpStoreClient(addr).set("bench/key", Bytes(8, 1));
  for (auto _ : state) {
    double secs = runTimedRanks(clients, [&](int, const std::function<void()>& ready) {
      TcpStoreClient c(addr);
      c.ping();  // connected before the clock starts
      ready();
      for (int i = 0; i < opsPerClient; ++i) c.get("bench/key");
    });
    state.SetIterationTime(secs);
  }
  state.SetItemsProcessed(state.iterations() * clients * opsPerClient);
  state.SetLabel(std::to_string(clients) + " client processes, GET");
}
BENCHMARK(BM_StoreOpsManyClients)->Arg(8)->UseManualTime()->Iterations(5);

void BM_StoreRendezvous(benchmark::State& state) {
  const int ranks = static_cast<int>(state.range(0));
  const SocketAddress addr = benchStore().address();  // started here, before any fork
  int round = 0;
  for (auto _ : state) {
    std::string prefix = "rdzv/" + std::to_string(round++);
    double secs = runTimedRanks(ranks, [&](int rank, const std::function<void()>& ready) {
      ready();  // the clock includes connecting: a fresh rank starts with nothing
      auto c = std::make_shared<TcpStoreClient>(addr);
      PrefixStore s(c, prefix);
      s.set("addr/" + std::to_string(rank), asBytes("127.0.0.1:" + std::to_string(40000 + rank)));
      std::vector<std::string> keys;
      for (int r = 0; r < ranks; ++r) keys.push_back("addr/" + std::to_string(r));
      s.multiGet(keys);
    });
    state.SetIterationTime(secs);
  }
  state.SetLabel(std::to_string(ranks) + " ranks set + wait-all");
}
BENCHMARK(BM_StoreRendezvous)->Arg(2)->Arg(8)->Arg(32)->Arg(64)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace eccl::bench

BENCHMARK_MAIN();
