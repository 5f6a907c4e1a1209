// Microbenchmarks of the socket transport's progress engine and matching, in one process:
// 8-byte ping-pong latency, one-way bandwidth, and the cost of many small tagged messages
// (matching, staging and completion per message).
#include <benchmark/benchmark.h>

#include "tests/transport/local_group.h"

namespace eccl::bench {
namespace {

void BM_PingPong(benchmark::State& state) {
  auto g = testing::localGroup(2, {.nsocks = 1});
  const size_t bytes = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    std::vector<uint8_t> buf(bytes);
    while (true) {
      auto r = g[1]->irecv(0, 1, buf.data(), bytes);
      try {
        r->wait(Deadline::after(std::chrono::seconds(30)));
      } catch (...) {
        return;
      }
      if (stop) return;
      g[1]->isend(0, 2, buf.data(), bytes)->wait(Deadline::after(std::chrono::seconds(30)));
    }
  });
  for (auto _ : state) {
    auto r = g[0]->irecv(1, 2, b.data(), bytes);
    g[0]->isend(1, 1, a.data(), bytes)->wait(Deadline::after(std::chrono::seconds(30)));
    r->wait(Deadline::after(std::chrono::seconds(30)));
  }
  stop = true;
  g[0]->isend(1, 1, a.data(), bytes)->wait(Deadline::after(std::chrono::seconds(30)));
  echo.join();
  state.SetLabel("round trip of " + std::to_string(bytes) + " B (one-way latency = half)");
}
BENCHMARK(BM_PingPong)->Arg(8)->Arg(4096)->UseRealTime();

void BM_OneWayBandwidth(benchmark::State& state) {
  auto g = testing::localGroup(2, {.nsocks = static_cast<int>(state.range(1))});
  const size_t bytes = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  for (auto _ : state) {
    auto r = g[1]->irecv(0, 1, b.data(), bytes);
    auto s = g[0]->isend(1, 1, a.data(), bytes);
    s->wait(Deadline::after(std::chrono::seconds(30)));
    r->wait(Deadline::after(std::chrono::seconds(30)));
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetLabel(std::to_string(state.range(1)) + " socket(s)");
}
BENCHMARK(BM_OneWayBandwidth)->Args({1 << 20, 1})->Args({1 << 20, 2})->Args({16 << 20, 2})->UseRealTime();

// 1000 small messages on distinct tags, all receives posted after the sends (staged) or before
// (direct): the per-message cost of matching and completion.
void BM_ManySmallMessages(benchmark::State& state) {
  auto g = testing::localGroup(2, {.nsocks = 1});
  const bool recvFirst = state.range(0) != 0;
  const int n = 1000;
  std::vector<uint64_t> out(n, 7), in(n);
  for (auto _ : state) {
    std::vector<transport::RequestPtr> reqs;
    reqs.reserve(2 * n);
    if (recvFirst)
      for (int i = 0; i < n; ++i) reqs.push_back(g[1]->irecv(0, i, &in[i], 8));
    for (int i = 0; i < n; ++i) reqs.push_back(g[0]->isend(1, i, &out[i], 8));
    if (!recvFirst)
      for (int i = 0; i < n; ++i) reqs.push_back(g[1]->irecv(0, i, &in[i], 8));
    for (auto& r : reqs) r->wait(Deadline::after(std::chrono::seconds(30)));
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(recvFirst ? "receives posted first" : "sends first (staged)");
}
BENCHMARK(BM_ManySmallMessages)->Arg(1)->Arg(0)->UseRealTime();

}  // namespace
}  // namespace eccl::bench

BENCHMARK_MAIN();
