// Recovery from a rank crash while serving, timed phase by phase (issue #12's figures):
//   recovery_bench crash  [--ranks 4,8,16] [--experts 64] [--expert-mib 4] [--layers 1]
//                         [--slots 0 (see slotsFor)] [--runs 3] [--spread (every expert on 2 ranks)]
//   recovery_bench frozen [--heartbeats 0.1,0.25,0.5,1,2] [--runs 3]   detection of a SIGSTOPped rank
//   recovery_bench cost   [--ranks 8] [--seconds 5] [--runs 5]          the heartbeat's idle and busy cost
// crash: N ranks serve (an all_reduce per step, the EPLB updater), the middle rank SIGKILLs
// itself at step 20; each survivor notes when it noticed, then recovers (agree, build the group
// without it), plans, reloads from a checkpoint file the experts no survivor held, restarts the
// updater and serves a step. Times are the slowest survivor's, from the kill; medians of --runs
// with [min, max].
#include <CLI/CLI.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <thread>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "eplb/eplb_updater.h"
#include "eplb/expert_recovery.h"
#include "eplb/weight_source.h"
#include "groups/group/elastic_group.h"
#include "groups/store/tcp_store_client.h"

namespace {

using namespace eccl;
using namespace eccl::eplb;
using namespace std::chrono_literals;

int64_t wallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::shared_ptr<Store> client(const ChildStoreServer& s) {
  return std::make_shared<TcpStoreClient>(s.address(), TcpStoreClientOptions{.timeout = 120s});
}

void oneStep(Communicator& c, EplbUpdater* u) {
  if (u) u->beforeForward();
  double x[4] = {1, 2, 3, 4};
  c.allReduce(x, x, 4, DataType::kFloat64, ReduceOp::kSum);
  if (u) u->afterForward();
}

std::string median(std::vector<double> v, const char* fmt = "%.0f") {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  char buf[96];
  std::string f = std::string(fmt) + " [" + fmt + ", " + fmt + "]";
  std::snprintf(buf, sizeof buf, f.c_str(), v[v.size() / 2], v.front(), v.back());
  return buf;
}

std::vector<double> parseList(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;
}

// --- crash
struct CrashOptions {
  int experts = 64, layers = 1, slots = 0, runs = 3;
  double expertMiB = 4;
  bool spread = false;
};

// Slots per rank: one redundant replica per rank (E/N + 1), but at least what lets the N - 1
// survivors hold every expert (with 64 experts, 4 ranks need 22 and 8 ranks 10: 17 and 9 would
// leave the survivors 51 and 63 slots). --spread: 2E/N, every expert on two ranks (nothing lost).
int slotsFor(int n, const CrashOptions& o) {
  if (o.slots > 0) return o.slots;
  if (o.spread) return (2 * o.experts + n - 1) / n;
  return std::max(o.experts / n + 1, (o.experts + n - 2) / (n - 1));
}

// Per survivor: ms from the kill to: noticed, agreed, built, restored, first step, rebalanced.
constexpr int kPhases = 6;
const char* kPhaseNames[kPhases] = {"detect", "agree", "new group", "experts restored", "first step", "rebalanced"};

std::vector<double> crashRun(int n, const CrashOptions& o, const std::string& checkpoint, int& lostOut, double& reloadMiB) {
  ChildStoreServer server;
  const int S = slotsFor(n, o);
  const ExpertLayout layout = ExpertLayout::ffn(static_cast<size_t>(o.expertMiB * 1048576));
  const int victim = n / 2;
  auto exits = runLocalRanks(n, [&](int rank) {
    auto store = client(server);
    ExpertWeights w(layout, o.layers, S);
    GroupOptions go{.comm = {.timeout = 60s}};
    auto g = ElasticGroup::join(store, "bench", rank, n, go);
    Placement cur = initialPlacement(o.layers, o.experts, n, S);
    for (int l = 0; l < o.layers; ++l)
      w.load(l, layerMaps(cur.layers[l], rank, o.experts), [&](int s, uint8_t* b) { fillExpert(b, layout, l, cur.layers[l].at(rank, s)); });
    auto u = std::make_unique<EplbUpdater>(g->comm(), w, cur, UpdaterOptions{.heatSteps = 100000, .algorithmSteps = 10});
    int64_t noticed = 0;
    try {
      for (int step = 0;; ++step) {
        if (rank == victim && step == 20) {
          store->set("killed", asBytes(std::to_string(wallMicros())));
          ::raise(SIGKILL);
        }
        oneStep(g->comm(), u.get());
      }
    } catch (const Error&) {
      noticed = wallMicros();
    }
    u.reset();
    auto res = g->recover({.joinTimeout = 10s, .buildTimeout = 30s});
    const int64_t agreed = noticed + static_cast<int64_t>(res.agreeSeconds * 1e6);
    const int64_t built = wallMicros();
    auto plan = planRecovery(g->comm(), w, o.experts, ExpertLoads{}, "swift");
    CheckpointFile source(checkpoint, layout);
    auto rep = restoreLostExperts(w, plan, g->rank(), source);
    const int64_t restored = wallMicros();
    u = std::make_unique<EplbUpdater>(g->comm(), w, plan.restored, UpdaterOptions{.heatSteps = 100000, .algorithmSteps = 10});
    u->applyPlacement(plan.target);
    oneStep(g->comm(), u.get());
    const int64_t first = wallMicros();
    while (u->placement().layers != plan.target.layers) oneStep(g->comm(), u.get());
    const int64_t rebalanced = wallMicros();
    const double killed = std::stod(toString(store->get("killed")));
    std::ostringstream out;
    for (int64_t t : {noticed, agreed, built, restored, first, rebalanced}) out << (t - killed) / 1e3 << ",";
    out << plan.lost.size() << "," << rep.bytes;
    store->set("result/" + std::to_string(rank), asBytes(out.str()));
    return 0;
  }, {std::chrono::seconds(300)});
  for (auto& e : exits)
    if (e.rank != victim && !e.ok()) throw Error(ErrorCode::kRemote, "rank failed: " + e.describe());
  auto store = client(server);
  std::vector<double> worst(kPhases, 0);
  double bytes = 0;
  for (int r = 0; r < n; ++r) {
    if (r == victim) continue;
    auto v = parseList(toString(store->get("result/" + std::to_string(r))));
    for (int p = 0; p < kPhases; ++p) worst[p] = std::max(worst[p], v[p]);
    lostOut = static_cast<int>(v[kPhases]);
    bytes += v[kPhases + 1];
  }
  reloadMiB = bytes / 1048576.0;
  return worst;
}

int crash(const std::vector<int>& sizes, const CrashOptions& o) {
  const ExpertLayout layout = ExpertLayout::ffn(static_cast<size_t>(o.expertMiB * 1048576));
  const char* dir = std::getenv("TMPDIR");
  const std::string checkpoint = std::string(dir ? dir : "/tmp") + "/eccl-recovery-bench-" + std::to_string(::getpid()) + ".ckpt";
  CheckpointFile::write(checkpoint, layout, o.layers, o.experts, [&](int l, int e, uint8_t* b) { fillExpert(b, layout, l, e); });
  std::printf("| ranks | slots/rank | experts lost (reloaded) | MiB reloaded |");
  for (auto* p : kPhaseNames) std::printf(" %s (ms) |", p);
  std::printf("\n|---|---|---|---|");
  for (int p = 0; p < kPhases; ++p) std::printf("---|");
  std::printf("\n");
  for (int n : sizes) {
    std::vector<std::vector<double>> phases(kPhases);
    int lost = 0;
    double mib = 0;
    for (int run = 0; run < o.runs; ++run) {
      auto w = crashRun(n, o, checkpoint, lost, mib);
      for (int p = 0; p < kPhases; ++p) phases[p].push_back(w[p]);
    }
    std::printf("| %d | %d | %d | %.0f |", n, slotsFor(n, o), lost, mib);
    for (auto& v : phases) std::printf(" %s |", median(v).c_str());
    std::printf("\n");
    std::fflush(stdout);
  }
  ::unlink(checkpoint.c_str());
  return 0;
}

// --- frozen: detection time of a SIGSTOPped rank vs the heartbeat timeout
double frozenRun(double heartbeat) {
  ChildStoreServer server;
  const int n = 4, victim = 2;
  std::vector<pid_t> pids;
  for (int rank = 0; rank < n; ++rank)
    pids.push_back(forkChild([&, rank] {
      auto store = client(server);
      GroupOptions go{.comm = {.timeout = 60s}};
      go.heartbeat.timeout = std::chrono::milliseconds(static_cast<long long>(heartbeat * 1000));
      auto g = StatelessGroup::create(store, "frozen", rank, n, go);
      try {
        for (int step = 0;; ++step) {
          if (rank == victim && step == 20) {
            store->set("stopped", asBytes(std::to_string(wallMicros())));
            ::raise(SIGSTOP);
          }
          oneStep(g->comm(), nullptr);
        }
      } catch (const Error&) {
      }
      const int64_t noticed = wallMicros();
      const double stopped = std::stod(toString(store->get("stopped")));
      store->set("noticed/" + std::to_string(rank), asBytes(std::to_string((noticed - stopped) / 1e3)));
      return 0;
    }));
  auto store = client(server);
  double worst = 0;
  for (int r = 0; r < n; ++r)
    if (r != victim) worst = std::max(worst, std::stod(toString(store->get("noticed/" + std::to_string(r)))));
  ::kill(pids[victim], SIGKILL);
  for (pid_t p : pids) reapChild(p, 30s);
  return worst;
}

int frozen(const std::vector<double>& heartbeats, int runs) {
  std::printf("| ECCL_HEARTBEAT_TIMEOUT (s) | frozen rank detected after (ms), slowest of 3 survivors |\n|---|---|\n");
  for (double h : heartbeats) {
    std::vector<double> v;
    for (int i = 0; i < runs; ++i) v.push_back(frozenRun(h));
    std::printf("| %.2f | %s |\n", h, median(v).c_str());
    std::fflush(stdout);
  }
  return 0;
}

// --- cost: CPU of an idle group and latency of a busy one, heartbeat on (0.1 s) vs off (0)
double cpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// {idle CPU ms per rank per second, busy all_reduce µs (8 bytes), busy all_reduce µs (1 MiB)}
std::vector<double> costRun(int n, double heartbeat, double seconds) {
  ChildStoreServer server;
  auto exits = runLocalRanks(n, [&](int rank) {
    auto store = client(server);
    GroupOptions go{.comm = {.timeout = 60s}};
    go.heartbeat.timeout = std::chrono::milliseconds(static_cast<long long>(heartbeat * 1000));
    auto g = StatelessGroup::create(store, "cost", rank, n, go);
    g->comm().barrier();
    const double c0 = cpuSeconds();
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(seconds * 1000)));
    const double idle = (cpuSeconds() - c0) / seconds * 1e3;
    g->comm().barrier();
    auto timeReduce = [&](size_t floats, int iters) {
      std::vector<float> v(floats, 1.0f);
      for (int i = 0; i < 10; ++i) g->comm().allReduce(v.data(), v.data(), floats, DataType::kFloat32, ReduceOp::kSum);
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) g->comm().allReduce(v.data(), v.data(), floats, DataType::kFloat32, ReduceOp::kSum);
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
    };
    const double small = timeReduce(2, 2000), big = timeReduce(1 << 18, 50);
    store->set("cost/" + std::to_string(rank), asBytes(std::to_string(idle) + "," + std::to_string(small) + "," + std::to_string(big)));
    return 0;
  }, {std::chrono::seconds(300)});
  for (auto& e : exits)
    if (!e.ok()) throw Error(ErrorCode::kRemote, "rank failed: " + e.describe());
  auto store = client(server);
  std::vector<double> mean(3, 0);
  for (int r = 0; r < n; ++r) {
    auto v = parseList(toString(store->get("cost/" + std::to_string(r))));
    for (int i = 0; i < 3; ++i) mean[i] += v[i] / n;
  }
  return mean;
}

int cost(int n, double seconds, int runs) {
  const double settings[3] = {0.1, 5, 0};  // the shortest allowed, the default, off
  std::vector<std::vector<double>> got[3];
  for (auto& g : got) g.resize(3);
  for (int i = 0; i < runs; ++i)  // interleaved: 0.1, 5, off, 0.1, 5, off ...
    for (int k = 0; k < 3; ++k) {
      auto r = costRun(n, settings[k], seconds);
      for (int m = 0; m < 3; ++m) got[k][m].push_back(r[m]);
    }
  std::printf("%d ranks, medians of %d interleaved runs [min, max]\n\n", n, runs);
  std::printf("| heartbeat | idle CPU per rank (ms/s) | all_reduce 8 B (µs) | all_reduce 1 MiB (µs) |\n|---|---|---|---|\n");
  const char* names[3] = {"0.1 s", "5 s (default)", "off"};
  for (int k = 0; k < 3; ++k)
    std::printf("| %s | %s | %s | %s |\n", names[k], median(got[k][0], "%.2f").c_str(), median(got[k][1], "%.1f").c_str(),
                median(got[k][2], "%.0f").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"recovery_bench: recovery from a rank crash, frozen-rank detection, heartbeat cost"};
  app.require_subcommand(1);
  CrashOptions co;
  std::string sizes = "4,8,16", heartbeats = "0.1,0.25,0.5,1,2";
  int runs = 3, costRanks = 8;
  double seconds = 5;
  auto* c = app.add_subcommand("crash", "recovery time after a SIGKILL while serving");
  c->add_option("--ranks", sizes, "group sizes")->capture_default_str();
  c->add_option("--experts", co.experts)->capture_default_str();
  c->add_option("--expert-mib", co.expertMiB)->capture_default_str();
  c->add_option("--layers", co.layers)->capture_default_str();
  c->add_option("--slots", co.slots, "slots per rank (0: experts/ranks + 1)")->capture_default_str();
  c->add_option("--runs", co.runs)->capture_default_str();
  c->add_flag("--spread", co.spread, "2E/N slots: every expert on two ranks, so the crash loses none");
  auto* f = app.add_subcommand("frozen", "detection time of a SIGSTOPped rank vs the heartbeat timeout");
  f->add_option("--heartbeats", heartbeats)->capture_default_str();
  f->add_option("--runs", runs)->capture_default_str();
  auto* k = app.add_subcommand("cost", "the heartbeat's cost on an idle and a busy group");
  k->add_option("--ranks", costRanks)->capture_default_str();
  k->add_option("--seconds", seconds, "idle window")->capture_default_str();
  k->add_option("--runs", runs)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (c->parsed()) {
      std::vector<int> n;
      for (double x : parseList(sizes)) n.push_back(static_cast<int>(x));
      return crash(n, co);
    }
    if (f->parsed()) return frozen(parseList(heartbeats), runs);
    return cost(costRanks, seconds, runs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recovery_bench: %s\n", e.what());
    return 1;
  }
}
