// The Gloo peer for scripts/compare-peers.sh: Gloo's TCP transport in processes that run nothing
// of eccl's (eccl-perf --compare gloo runs Gloo beside an idle eccl group in the same ranks).
// Gloo brings no launcher, so this one starts its rank processes itself; they meet through a
// file store, as Gloo's own benchmarks do. Measured like mpi_peer: `reps` repetitions of `iters`
// operations after a barrier, each timed at the slowest rank; prints the median and range.
//   gloo_peer -o all_gather -b 1M -r 4 [-n 100] [-t 5] [-w 10]    (-b: bytes per rank)
//   gloo_peer -o pingpong -b 8 -r 2
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/common/local_ranks.h"
#include "apps/eccl-perf/gloo_compare.h"

namespace {

size_t parseSize(const std::string& s) {
  size_t used = 0;
  double v = std::stod(s, &used);
  const char unit = used < s.size() ? s[used] : 0;
  if (unit == 'K' || unit == 'k') v *= 1 << 10;
  if (unit == 'M' || unit == 'm') v *= 1 << 20;
  if (unit == 'G' || unit == 'g') v *= double(1 << 30);
  return static_cast<size_t>(v);
}

struct Args {
  std::string op = "pingpong";
  size_t bytes = 8;
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
  try {
    for (int i = 1; i < argc; i += 2) {
      const std::string k = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      const std::string v = argv[i + 1];
      if (k == "-o") a.op = v;
      else if (k == "-b") a.bytes = parseSize(v);
      else if (k == "-r") a.ranks = std::stoi(v);
      else if (k == "-n") a.iters = std::stoi(v);
      else if (k == "-t") a.reps = std::stoi(v);
      else if (k == "-w") a.warmup = std::stoi(v);
      else throw std::invalid_argument("unknown option " + k);
    }
    if (a.op != "all_gather" && a.op != "pingpong") throw std::invalid_argument("-o must be all_gather or pingpong, not " + a.op);
    if (a.ranks < 2 || (a.op == "pingpong" && a.ranks % 2)) throw std::invalid_argument("-r must be >= 2 (even for pingpong)");
    if (a.iters < 1 || a.reps < 1 || a.warmup < 0 || a.bytes == 0) throw std::invalid_argument("-n, -t >= 1, -w >= 0, -b > 0");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gloo_peer: %s\n", e.what());
    return 2;
  }
  char dir[] = "/tmp/gloo-peer-XXXXXX";
  if (!::mkdtemp(dir)) {
    std::perror("gloo_peer: mkdtemp");
    return 1;
  }
  auto exits = eccl::runLocalRanks(a.ranks, [&](int rank) { return rankMain(rank, a, dir); }, {.timeout = std::chrono::minutes(10)});
  std::filesystem::remove_all(dir);
  return eccl::allRanksOk(exits) ? 0 : 1;
}
