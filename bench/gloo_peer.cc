// The Gloo peer for scripts/compare-peers.sh: Gloo's TCP transport in processes that run nothing
// of eccl's (eccl-perf --compare gloo runs Gloo beside an idle eccl group in the same ranks).
// Gloo brings no launcher, so this one starts its rank processes itself; they meet through a
// file store, as Gloo's own benchmarks do. Measured like mpi_peer: `reps` repetitions of `iters`
// operations after a barrier, each timed at the slowest rank; prints the median and range.
//   gloo_peer -o all_gather -b 1M -r 4 [-n 100] [-t 5] [-w 10]    (-b: bytes per rank)
//   gloo_peer -o pingpong -b 8 -r 2
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/common/local_ranks.h"
#include "apps/common/size_text.h"
#include "apps/eccl-perf/gloo_compare.h"

namespace {

struct Args {
  std::string op = "pingpong", size = "8";
  size_t bytes = 0;  // size, parsed
  int ranks = 2, iters = 100, reps = 5, warmup = 10;
};

int rankMain(int rank, const Args& a, const std::string& dir) {
  eccl::perf::GlooPeer gloo(rank, a.ranks, dir);
  std::vector<double> times;
  for (int r = 0; r < a.reps; ++r) {
    const int warmup = r == 0 ? a.warmup : 0;
    const double us = a.op == "all_gather" ? gloo.allGatherUs(a.bytes * a.ranks, a.iters, warmup)
                                           : gloo.pingPongUs(a.bytes, a.iters, warmup);
    times.push_back(gloo.maxOverRanks(us));
  }
  if (rank == 0) {
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    const double moved = a.op == "all_gather" ? double(a.bytes) * a.ranks : double(a.bytes);
    const double bus = a.op == "all_gather" ? double(a.ranks - 1) / a.ranks : 1.0;
    std::printf("gloo_peer %s ranks %d bytes %zu median_us %.2f range_us %.2f-%.2f busbw_GBs %.3f\n", a.op.c_str(), a.ranks,
                a.bytes, med, times.front(), times.back(), moved / med / 1e3 * bus);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Gloo's TCP transport in processes of its own, timed like mpi_peer"};
  app.add_option("-o", a.op, "all_gather or pingpong")->check(CLI::IsMember({"all_gather", "pingpong"}));
  app.add_option("-b", a.size, "bytes per rank (all_gather) or per message (pingpong): 8, 64K, 1M");
  app.add_option("-r", a.ranks, "ranks (even for pingpong)")->check(CLI::Range(2, 256));
  app.add_option("-n", a.iters, "operations per repetition")->check(CLI::Range(1, 100'000'000));
  app.add_option("-t", a.reps, "repetitions")->check(CLI::Range(1, 10'000));
  app.add_option("-w", a.warmup, "warm-up operations")->check(CLI::Range(0, 100'000'000));
  CLI11_PARSE(app, argc, argv);
  std::string why;
  const auto bytes = eccl::parseSize(a.size, size_t(1) << 30, why);
  if (!bytes || *bytes == 0) {
    std::fprintf(stderr, "gloo_peer: -b '%s' %s\n", a.size.c_str(), bytes ? "must be at least 1" : why.c_str());
    return 2;
  }
  a.bytes = *bytes;
  if (a.op == "pingpong" && a.ranks % 2) {
    std::fprintf(stderr, "gloo_peer: -r %d: pingpong pairs ranks, so it needs an even number\n", a.ranks);
    return 2;
  }
  char dir[] = "/tmp/gloo-peer-XXXXXX";  // mkdtemp's template: the Xs become a unique name
  if (!::mkdtemp(dir)) {
    std::perror("gloo_peer: mkdtemp");
    return 1;
  }
  auto exits = eccl::runLocalRanks(a.ranks, [&](int rank) { return rankMain(rank, a, dir); }, {.timeout = std::chrono::minutes(10)});
  std::filesystem::remove_all(dir);
  return eccl::allRanksOk(exits) ? 0 : 1;
}
