// The expert-move pattern end to end: N ranks (default 4) each receive 16 experts of 4 MiB from
// the others and send 16, through TransferPlan + WeightLoader (stage, batch_isend_irecv,
// commit), next to the same bytes moved as one raw batch_isend_irecv (eccl-perf's batch_p2p) in
// the same run. Prints the median over iterations and the loader's share of the raw bandwidth.
//   expert_move_bench [--ranks 4] [--experts-per-rank 16] [--expert-bytes 4194304] [--iterations 10]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/transfer_plan.h"
#include "eplb/weight_loader.h"
#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_client.h"

namespace {

using namespace eccl;
using namespace eccl::eplb;
using Clock = std::chrono::steady_clock;

// Rank r holds experts r·K .. r·K+K-1; in the other placement each goes to rank r+1+(slot mod 3)
// (mod N ≥ 4), so every rank receives K experts from three peers (one per residue) and sends K.
Placement movedPlacement(int N, int K) {
  Placement p{N * K, N, K, {LayerPlacement(N, K)}};
  std::vector<int> fill(N, 0);
  for (int r = 0; r < N; ++r)
    for (int s = 0; s < K; ++s) {
      const int to = (r + 1 + s % 3) % N;
      p.layers[0].set(to, fill[to]++, r * K + s);
    }
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"expert moves through the weight loader vs raw batch_isend_irecv"};
  int N = 4, K = 16, iters = 10;
  size_t bytes = 4 << 20;
  app.add_option("--ranks", N)->check(CLI::Range(4, 64));
  app.add_option("--experts-per-rank", K)->check(CLI::Range(3, 1024));
  app.add_option("--expert-bytes", bytes)->check(CLI::Range(size_t(1536), size_t(1) << 30));
  app.add_option("--iterations", iters)->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);

  ChildStoreServer server;  // before forking: the store runs in its own process
  auto exits = runLocalRanks(N, [&](int rank) {
    auto store = std::make_shared<TcpStoreClient>(server.address());
    auto g = StatelessGroup::create(store, "move", rank, N);
    Communicator& c = g->comm();
    ExpertLayout layout = ExpertLayout::ffn(bytes);
    const size_t payload = layout.payloadBytes();
    Placement a{N * K, N, K, {LayerPlacement(N, K)}};
    for (int r = 0; r < N; ++r)
      for (int s = 0; s < K; ++s) a.layers[0].set(r, s, r * K + s);
    Placement b = movedPlacement(N, K);
    ExpertWeights w(layout, 1, K);
    w.load(0, layerMaps(a.layers[0], rank, N * K), [&](int s, uint8_t* blk) { fillExpert(blk, layout, 0, a.layers[0].at(rank, s)); });
    TransferPlan ab = TransferPlan::build(a, b, layout), ba = TransferPlan::build(b, a, layout);
    WeightLoader loader(w, c);

    // Raw: the same number of messages and bytes, one batch_isend_irecv (eccl-perf batch_p2p).
    std::vector<uint8_t> sendBuf(payload * K, 1), recvBuf(payload * K);
    std::vector<P2POp> raw;
    for (int i = 0; i < K; ++i) {
      const int shift = 1 + i % 3;
      raw.push_back({P2POp::kSend, sendBuf.data() + i * payload, payload, (rank + shift) % N, uint64_t(i)});
      raw.push_back({P2POp::kRecv, recvBuf.data() + i * payload, payload, (rank + N - shift) % N, uint64_t(i)});
    }
    std::vector<double> tRaw, tLoader;
    for (int it = 0; it < iters + 1; ++it) {  // the first round warms up
      c.barrier();
      auto t0 = Clock::now();
      c.batchIsendIrecv(raw).wait();
      c.barrier();
      if (it) tRaw.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      const bool forward = it % 2 == 0;
      c.barrier();
      t0 = Clock::now();
      loader.start(forward ? ab : ba, 0);
      loader.finish(0, (forward ? b : a).layers[0], rank);
      c.barrier();
      if (it) tLoader.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    // Every byte arrived where the plan said.
    const Placement& now = iters % 2 ? a : b;
    auto view = w.read(0);
    for (int s = 0; s < K; ++s)
      if (expertChecksum(view.slot(s), layout) != expectedChecksum(layout, 0, now.layers[0].at(rank, s))) return 3;
    if (rank == 0) {
      const double mb = double(payload) * K;
      const double r = median(tRaw), l = median(tLoader);
      std::printf("%d ranks, each sending and receiving %d experts of %.2f MiB (%s), median of %d\n", N, K, payload / 1048576.0,
                  layout.describe().c_str(), iters);
      std::printf("  raw batch_isend_irecv : %7.1f ms  %.2f GB/s per rank\n", r * 1e3, mb / r / 1e9);
      std::printf("  weight loader         : %7.1f ms  %.2f GB/s per rank  (%.0f%% of raw; plan + stage + commit included)\n",
                  l * 1e3, mb / l / 1e9, 100.0 * r / l);
    }
    return 0;
  }, {std::chrono::seconds(600)});
  return allRanksOk(exits) ? 0 : 1;
}
