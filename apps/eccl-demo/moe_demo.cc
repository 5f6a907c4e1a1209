#include "apps/eccl-demo/moe_demo.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include <signal.h>
#include <unistd.h>

#include "apps/common/child_store_server.h"
#include "apps/common/local_ranks.h"
#include "apps/eccl-demo/synthetic_moe.h"
#include "eplb/elastic_transition.h"
#include "eplb/eplb_updater.h"
#include "eplb/expert_recovery.h"
#include "eplb/weight_source.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"
#include "transport/socket/socket.h"

namespace eccl::demo {
namespace {

using namespace eplb;
using Clock = std::chrono::steady_clock;
constexpr const char* kGroup = "moe";

double mib(double bytes) { return bytes / 1048576.0; }

// Wall-clock microseconds: the killed process stamps its death with it, the survivors compare.
int64_t wallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One rank process of the demo.
class DemoRank {
 public:
  DemoRank(const DemoOptions& o, int process, std::shared_ptr<Store> store)
      : o_(o),
        process_(process),
        store_(std::move(store)),
        weights_(ExpertLayout::ffn(o.expertBytes), o.layers, o.slots),
        router_(o.layers, o.experts, 1.1, std::max(1, o.steps / 2)) {}

  // Initial members: a group of N, the default layout, weights "loaded from the checkpoint".
  void start() {
    group_ = ElasticGroup::join(store_, kGroup, process_, o_.ranks, groupOptions(0));
    placement_ = initialPlacement(o_.layers, o_.experts, o_.ranks, o_.slots);
    for (int l = 0; l < o_.layers; ++l)
      weights_.load(l, layerMaps(placement_.layers[l], rank(), o_.experts),
                    [&](int s, uint8_t* b) { fillExpert(b, weights_.layout(), l, placement_.layers[l].at(rank(), s)); });
    newUpdater();
    say("== %d ranks serve a synthetic MoE: %d layers x %d experts, %d slots per rank, experts of %s (%.2f MiB)\n",
        o_.ranks, o_.layers, o_.experts, o_.slots, weights_.layout().describe().c_str(), mib(weights_.layout().payloadBytes()));
    say("   EPLB policy %s, heat window %d steps, algorithm interval %d steps, one layer moved per step\n", o_.policy.c_str(),
        heatSteps(), o_.algorithmSteps);
  }

  // Serves `steps` steps (counted by the step number all ranks share, so survivors of a crash
  // that were a step apart end together). A rank failure is recovered from, then serving goes on.
  void serve(int steps, const char* phase) {
    say("== serving %d steps on %d ranks (%s)\n", steps, size(), phase);
    const int first = step_, end = step_ + steps;
    while (step_ < end) {
      if (process_ == o_.killRank && step_ == o_.killAtStep) {
        store_->set("demo/killed_at", asBytes(std::to_string(wallMicros())));
        ::raise(SIGKILL);  // no clean-up, no goodbye: as a crash
      }
      try {
        step(true);
      } catch (const Error& e) {
        recoverFrom(e);
        continue;
      }
      if (recovery_) recoveredSummary();
      const int i = step_ - first;
      if (i % std::max(1, steps / 4) == 0 && step_ < end)
        say("   ... step %d/%d, served imbalance %.3f\n", i, steps, servedImbalance(false));
    }
  }

  // A replacement process (the fault scenario): joins once the survivors scale back up.
  void replace(int newRank, int newSize) {
    const auto epoch = std::stoull(toString(store_->get("demo/replace_at_epoch")));
    joinAt(epoch + 1, newRank, newSize);
  }

  void announceReplacement() {
    if (rank() == 0) store_->set("demo/replace_at_epoch", asBytes(std::to_string(group_->epoch())));
  }

  // Serves until the updater is between cycles, so an elastic change never interrupts a transfer.
  void drainUpdater() {
    while (updater_->schedule().phase() != UpdaterSchedule::Phase::kCollecting) step(true);
  }

  void scaleUp(int to) {
    drainUpdater();
    std::vector<int> map(size());
    for (int r = 0; r < size(); ++r) map[r] = r;
    elastic("scale-up", to, map);
  }

  void scaleDown(int to) {
    drainUpdater();
    std::vector<int> map(size());
    for (int r = 0; r < size(); ++r) map[r] = r < to ? r : -1;
    elastic("scale-down", to, map);
  }

  // A process that joins the next epoch with empty slots.
  void joinAt(uint64_t epoch, int newRank, int newSize) {
    ElasticReport rep;
    auto [g, plan] = ElasticTransition::join(store_, kGroup, newRank, newSize, weights_, groupOptions(epoch), &rep);
    group_ = std::move(g);
    rep.standbySeconds = 0;  // a joiner waits in join() from its start: not the standby build time
    afterSwitch(plan, rep, "scale-up", 0, 0.0);
  }

  bool left() const { return !group_ || !group_->member(); }

  // Every slot of every layer holds the bytes of the expert its row names, and the maps are
  // the placement's. Returns the mismatches over all ranks.
  int verify() {
    double bad = 0, checked = 0;
    for (int l = 0; l < o_.layers; ++l) {
      auto view = weights_.read(l);
      if (view.maps().row != placement_.layers[l].row(rank()) ||
          view.maps().log2phy != placement_.layers[l].log2phy(rank(), o_.experts))
        bad++;
      for (int s = 0; s < o_.slots; ++s) {
        const int e = view.maps().row[s];
        checked++;
        if (e < 0 || view.checksum(s) != expectedChecksum(weights_.layout(), l, e)) bad++;
      }
    }
    double v[2] = {bad, checked};
    comm().allReduce(v, v, 2, DataType::kFloat64, ReduceOp::kSum);
    if (v[0] == 0)
      say("== verify: all %.0f expert replicas on %d ranks match their checksums (SHA-256), maps match the placement\n", v[1], size());
    else
      say("== verify FAILED: %.0f of %.0f expert replicas or maps are wrong\n", v[0], v[1]);
    return static_cast<int>(v[0]);
  }

 private:
  Communicator& comm() { return group_->comm(); }
  int rank() const { return group_->rank(); }
  int size() const { return group_->size(); }
  int heatSteps() const { return o_.heatSteps > 0 ? o_.heatSteps : std::max(1, o_.steps / 3); }
  GroupOptions groupOptions(uint64_t epoch) const { return {.epoch = epoch, .comm = {.timeout = o_.timeout}}; }

  template <typename... A>
  void say(const char* fmt, A... args) {
    if (group_ && group_->member() && rank() == 0) {
      std::printf(fmt, args...);
      std::fflush(stdout);
    }
  }

  // A rank failed under us: agree with the other survivors, rebuild the group without the failed
  // ranks, put back the experts only they held, and go on serving.
  void recoverFrom(const Error& e) {
    Recovery rec;
    rec.noticedMicros = wallMicros();
    rec.error = e.what();
    rec.oldSize = size();
    updater_.reset();  // its loader works on the revoked group
    rec.group = group_->recover();
    int64_t st = step_;
    comm().allReduce(&st, &st, 1, DataType::kInt64, ReduceOp::kMax);  // survivors may be a step apart
    step_ = static_cast<int>(st);
    const auto t0 = Clock::now();
    rec.plan = planRecovery(comm(), weights_, o_.experts, recent_, o_.policy);
    CheckpointFile checkpoint(o_.checkpoint, weights_.layout());
    rec.restore = restoreLostExperts(weights_, rec.plan, rank(), checkpoint);
    rec.replaceSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    placement_ = rec.plan.restored;
    recent_ = {};
    newUpdater();
    updater_->applyPlacement(rec.plan.target);  // then rebalance from the surviving holders, layer by layer
    recovery_ = std::move(rec);
  }

  // After the first step served on the recovered group: what happened, slowest survivor's view.
  void recoveredSummary() {
    Recovery rec = std::move(*recovery_);
    recovery_.reset();
    const double killed = std::stod(toString(store_->get("demo/killed_at")));
    double t[5] = {(rec.noticedMicros - killed) / 1e3, rec.group.agreeSeconds * 1e3, rec.group.buildSeconds * 1e3,
                   rec.replaceSeconds * 1e3, (wallMicros() - killed) / 1e3};
    comm().allReduce(t, t, 5, DataType::kFloat64, ReduceOp::kMax);
    double bytes[2] = {double(rec.restore.bytes), double(rec.restore.reloaded)};
    comm().allReduce(bytes, bytes, 2, DataType::kFloat64, ReduceOp::kSum);
    int kept = 0, slots = 0;
    for (auto& l : rec.plan.survivors.layers)
      for (int v : l.flat()) kept += v >= 0, slots++;
    std::string failed;
    for (int r : rec.group.failed) {
      if (!failed.empty()) failed += ", ";
      failed += std::to_string(r);
    }
    say("== rank %s SIGKILLed at step %d; every survivor noticed within %.0f ms:\n     %s\n", failed.c_str(), o_.killAtStep,
        t[0], rec.error.substr(0, 300).c_str());
    say("   recovered: %d -> %d ranks at epoch %llu (agree %.0f ms, build %.0f ms, %d round%s); %d replicas kept in place, "
        "%zu experts had no surviving replica and were reloaded from %s (%.1f MiB, %.0f ms with planning)\n",
        rec.oldSize, size(), static_cast<unsigned long long>(rec.group.epoch), t[1], t[2], rec.group.rounds,
        rec.group.rounds == 1 ? "" : "s", kept, rec.plan.lost.size(), rec.restore.source.c_str(), mib(bytes[0]), t[3]);
    say("   serving interruption (kill -> first step completed on the new group): %.0f ms; the policy's rebalance from "
        "the surviving holders follows, one layer per step\n", t[4]);
  }

  struct Recovery {
    int64_t noticedMicros = 0;
    std::string error;
    int oldSize = 0;
    RecoveryResult group;
    RecoveryPlan plan;
    RestoreReport restore;
    double replaceSeconds = 0;
  };

  void newUpdater() {
    updater_.reset();
    updater_ = std::make_unique<EplbUpdater>(comm(), weights_, placement_,
                                             UpdaterOptions{.heatSteps = heatSteps(), .algorithmSteps = o_.algorithmSteps,
                                                            .policy = o_.policy});
  }

  // One forward step: route every layer's tokens by this rank's log2phy, exchange the counts
  // (the dispatch), record what arrived at this rank's slots.
  void step(bool withUpdater) {
    const int N = size(), L = o_.layers, S = o_.slots, me = rank();
    if (withUpdater) updater_->beforeForward();
    std::vector<double> counts(size_t(N) * L * S, 0.0);  // [rank][layer][slot]
    if (recent_.layers.empty()) recent_ = {o_.experts, std::vector<LayerLoads>(L, LayerLoads{std::vector<double>(o_.experts, 0.0), {}})};
    for (int l = 0; l < L; ++l) {
      auto view = weights_.read(l);  // the layer's weights and maps for this forward
      const auto& m = view.maps();
      auto tokens = router_.tokens(step_, l, me);
      for (int e = 0; e < o_.experts; ++e) {
        const int p = m.log2phy[e];
        if (p < 0 || p >= N * S) throw Error(ErrorCode::kInvalidArgument, "layer " + std::to_string(l) + ": expert " + std::to_string(e) + " has no route");
        counts[(size_t(p / S) * L + l) * S + p % S] += tokens[e];
      }
    }
    comm().allReduce(counts.data(), counts.data(), counts.size(), DataType::kFloat64, ReduceOp::kSum);
    double imb = 0;
    for (int l = 0; l < L; ++l) {
      if (withUpdater) updater_->record(l, std::span<const double>(counts.data() + (size_t(me) * L + l) * S, S));
      double maxLoad = 0, total = 0;
      for (int r = 0; r < N; ++r) {
        double load = 0;
        for (int s = 0; s < S; ++s) load += counts[(size_t(r) * L + l) * S + s];
        maxLoad = std::max(maxLoad, load);
        total += load;
      }
      imb += total > 0 ? maxLoad / (total / N) : 1.0;
      // Logical loads (identical on every rank: the all_reduce gives everyone the same sums).
      for (int r = 0; r < N; ++r)
        for (int s = 0; s < S; ++s)
          if (int e = placement_.layers[l].at(r, s); e >= 0) recent_.layers[l].total[e] += counts[(size_t(r) * L + l) * S + s];
    }
    imbSum_ += imb / L;
    imbSteps_++;
    if (withUpdater) {
      updater_->afterForward();
      placement_ = updater_->placement();
      if (auto rep = updater_->takeReport()) cycleDone(*rep);
    }
    step_++;
  }

  double servedImbalance(bool reset) {
    double v = imbSteps_ ? imbSum_ / imbSteps_ : 0;
    if (reset) imbSum_ = imbSteps_ = 0;
    return v;
  }

  void cycleDone(const CycleReport& rep) {
    double slow[1] = {rep.transferSeconds};
    comm().allReduce(slow, slow, 1, DataType::kFloat64, ReduceOp::kMax);
    const double served = servedImbalance(true);
    if (std::isnan(rep.imbalanceBefore))
      say("   rebalance on %d ranks at step %d: %d layers, %d replicas changed, %.1f MiB moved (minimum %.1f), transfer %.0f ms "
          "(slowest rank, start to commit, summed over layers) = %.2f GB/s\n",
          size(), step_, rep.layersChanged, rep.slotsChanged, mib(rep.networkBytes), mib(rep.minimumBytes), slow[0] * 1e3,
          slow[0] > 0 ? rep.networkBytes / slow[0] / 1e9 : 0.0);
    else
      say("   EPLB cycle %d at step %d: imbalance %.3f -> %.3f (policy, on the gathered loads; served since the last cycle "
          "%.3f); %d layers, %d replicas changed, %.1f MiB moved (minimum %.1f), transfer %.0f ms (slowest rank, start to "
          "commit, summed over layers) = %.2f GB/s, policy %.1f ms in the background\n",
          rep.cycle + 1, step_, rep.imbalanceBefore, rep.imbalanceAfter, served, rep.layersChanged, rep.slotsChanged,
          mib(rep.networkBytes), mib(rep.minimumBytes), slow[0] * 1e3, slow[0] > 0 ? rep.networkBytes / slow[0] / 1e9 : 0.0,
          rep.policySeconds * 1e3);
  }

  void elastic(const char* what, int to, const std::vector<int>& map) {
    say("== %s %d -> %d ranks while serving (policy %s)\n", what, size(), to, o_.policy.c_str());
    const int from = size();
    ExpertLoads loads = recent_;
    if (loads.layers.empty()) throw Error(ErrorCode::kInvalidArgument, std::string(what) + " before any step was served");
    updater_.reset();  // its loader is on the group that is about to be replaced
    auto t0 = Clock::now();
    ElasticTransition t(*group_, weights_, placement_, loads, to, map, o_.policy);
    int served = 0;
    while (!t.step()) {
      step(false);
      served++;
    }
    const double total = std::chrono::duration<double>(Clock::now() - t0).count();
    if (t.left()) {
      std::printf("   process %d left the group cleanly after sending its experts\n", process_);
      std::fflush(stdout);
      return;
    }
    say("   %d -> %d: rank 0 served %d steps on the old group meanwhile\n", from, to, served);
    afterSwitch(t.plan(), t.report(), what, step_, total);
  }

  // Every member of the new group, right after the switch (or the join).
  void afterSwitch(const ElasticPlan& plan, const ElasticReport& rep, const char* what, int step, double total) {
    int64_t s = step;
    comm().broadcast(&s, sizeof(s), 0);  // joiners learn where serving is
    step_ = static_cast<int>(s);
    double t[4] = {rep.standbySeconds, rep.moveSeconds, rep.switchSeconds, total};
    comm().allReduce(t, t, 4, DataType::kFloat64, ReduceOp::kMax);  // the slowest rank's times
    say("   %s: standby group ready after %.0f ms; %d replicas (%.1f MiB) moved %s in %.0f ms (%.2f GB/s, interleaved with "
        "serving); switch %.0f ms; reconfigure time %.0f ms in all\n",
        what, t[0] * 1e3, rep.transfers, mib(rep.networkBytes),
        plan.growing() ? "to the joiners over the standby group" : "off the leavers over the old group", t[1] * 1e3,
        t[1] > 0 ? rep.networkBytes / t[1] / 1e9 : 0.0, t[2] * 1e3, t[3] * 1e3);
    placement_ = plan.staged;
    recent_ = {};
    newUpdater();
    updater_->applyPlacement(plan.target);  // the policy's placement for the new membership, layer by layer
  }

  const DemoOptions& o_;
  int process_;
  std::shared_ptr<Store> store_;
  std::unique_ptr<ElasticGroup> group_;
  ExpertWeights weights_;
  Placement placement_;
  std::unique_ptr<EplbUpdater> updater_;
  SyntheticRouter router_;
  ExpertLoads recent_;
  std::optional<Recovery> recovery_;  // set between a recovery and the first step served after it
  int step_ = 0;
  double imbSum_ = 0;
  int imbSteps_ = 0;
};

int rankMain(const DemoOptions& o, int process, const SocketAddress& storeAddr) {
  auto store = std::make_shared<TcpStoreClient>(storeAddr, TcpStoreClientOptions{.timeout = o.timeout});
  DemoRank r(o, process, store);
  if (o.killRank >= 0) {  // the fault scenario; process `ranks` is the replacement
    if (process < o.ranks) {
      r.start();
      r.serve(o.steps, "EPLB rebalances as loads drift; a rank will crash");
      r.serve(o.steps / 2, "after the recovery");
      r.announceReplacement();
      r.scaleUp(o.ranks);
    } else {
      r.replace(o.ranks - 1, o.ranks);
    }
    r.serve(o.steps / 2, "after the replacement joined");
    return r.verify() ? 2 : 0;
  }
  const int low = std::min(o.ranks, o.scaleTo), high = std::max(o.ranks, o.scaleTo);
  if (process < o.ranks) {
    r.start();
    r.serve(o.steps, "EPLB rebalances as loads drift");
  }
  if (o.scaleTo > o.ranks) {
    if (process < o.ranks) r.scaleUp(high);
    else r.joinAt(1, process, high);
    r.serve(o.steps, "after the scale-up");
    r.scaleDown(low);
  } else if (o.scaleTo < o.ranks) {
    r.scaleDown(low);
  }
  if (r.left()) return 0;
  r.serve(o.steps / 2, "final membership");
  return r.verify() ? 2 : 0;
}

// MemAvailable from /proc/meminfo in bytes, or 0 when it cannot be read.
double availableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string name;
  double kib = 0;
  std::string unit;
  while (in >> name >> kib >> unit)
    if (name == "MemAvailable:") return kib * 1024;
  return 0;
}

// Each rank holds layers x slots experts, plus one layer's worth arriving during a move. A size
// that cannot fit is refused here in one line, instead of a bad_alloc in every rank (F13).
void checkMemoryFits(const DemoOptions& o, int processes) {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  const double perRank = double(o.expertBytes) * o.slots * (o.layers + 1);
  const double available = availableMemoryBytes();
  if (available > 0 && perRank * processes > 0.9 * available)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--expert-bytes {} x --slots {} x (--layers {} + 1 layer in flight) needs {:.1f} GiB per "
                            "rank, {:.1f} GiB for {} ranks, but this machine has {:.1f} GiB available; lower "
                            "--expert-bytes, --slots or --layers",
                            o.expertBytes, o.slots, o.layers, perRank / kGiB, perRank * processes / kGiB, processes,
                            available / kGiB));
}

}  // namespace

int runMoeDemo(const DemoOptions& o) {
  if (o.ranks < 1 || o.scaleTo < 1 || o.layers < 1 || o.experts < 1 || o.slots < 1 || o.steps < 1)
    throw Error(ErrorCode::kInvalidArgument, "ranks, scale-to, layers, experts, slots and steps must all be positive");
  if (o.experts > std::min(o.ranks, o.scaleTo) * o.slots)
    throw Error(ErrorCode::kInvalidArgument, std::to_string(o.experts) + " experts do not fit in " +
                                                 std::to_string(std::min(o.ranks, o.scaleTo)) + " ranks x " + std::to_string(o.slots) + " slots");
  if (o.slots > o.experts)
    throw Error(ErrorCode::kInvalidArgument, "--slots " + std::to_string(o.slots) + " for --experts " +
                                                 std::to_string(o.experts) + ": a rank would have to hold one expert twice");
  if (o.killRank >= o.ranks)
    throw Error(ErrorCode::kInvalidArgument, "--kill-rank " + std::to_string(o.killRank) + " is not a rank of the first " +
                                                 std::to_string(o.ranks));
  if (o.killRank >= 0 && o.killAtStep >= o.steps)
    throw Error(ErrorCode::kInvalidArgument, "--kill-at-step " + std::to_string(o.killAtStep) + " is past the first serving phase (--steps " +
                                                 std::to_string(o.steps) + ")");
  if (o.killRank >= 0 && o.ranks < 2) throw Error(ErrorCode::kInvalidArgument, "--kill-rank needs --ranks of 2 or more");
  if (o.killRank >= 0 && o.experts > (o.ranks - 1) * o.slots)
    throw Error(ErrorCode::kInvalidArgument, std::to_string(o.experts) + " experts do not fit in the " + std::to_string(o.ranks - 1) +
                                                 " survivors of --kill-rank x " + std::to_string(o.slots) + " slots");
  const int processes = o.killRank >= 0 ? o.ranks + 1 : std::max(o.ranks, o.scaleTo);
  checkMemoryFits(o, processes);
  // The store in a process of its own, as eccl-store would run: a rank that crashes cannot take
  // it (and with it every survivor's recovery) down.
  ChildStoreServer storeServer;
  DemoOptions opts = o;
  std::string tempCheckpoint;
  if (o.killRank >= 0) {
    if (opts.checkpoint.empty())
      opts.checkpoint = tempCheckpoint = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) +
                                         "/eccl-demo-" + std::to_string(::getpid()) + ".ckpt";
    const ExpertLayout layout = ExpertLayout::ffn(o.expertBytes);
    const auto w0 = Clock::now();
    CheckpointFile::write(opts.checkpoint, layout, o.layers, o.experts,
                          [&](int l, int e, uint8_t* block) { fillExpert(block, layout, l, e); });
    std::printf("== eccl-demo: fault scenario: rank %d will be SIGKILLed at step %d; checkpoint of %d layers x %d experts "
                "(%.1f MiB, per-expert checksums) written to %s in %.0f ms\n",
                o.killRank, o.killAtStep, o.layers, o.experts, mib(double(layout.payloadBytes()) * o.layers * o.experts),
                opts.checkpoint.c_str(), std::chrono::duration<double>(Clock::now() - w0).count() * 1e3);
  }
  std::printf("== eccl-demo: %d local processes; the store runs in its own process (pid %d) at %s\n", processes,
              static_cast<int>(storeServer.pid()), storeServer.address().str().c_str());
  std::fflush(stdout);
  auto t0 = Clock::now();
  auto exits = runLocalRanks(processes, [&](int p) { return rankMain(opts, p, storeServer.address()); }, {o.timeout * 4});
  if (!tempCheckpoint.empty()) ::unlink(tempCheckpoint.c_str());
  int failed = 0;
  for (auto& e : exits)
    if (e.rank == o.killRank && e.signal == SIGKILL) {
      std::printf("   process %d ended by SIGKILL, as the scenario asked\n", e.rank);
    } else if (!e.ok()) {
      ++failed;
      std::printf("   FAILED: %s\n", e.describe().c_str());
    }
  std::printf("== eccl-demo %s in %.1f s\n", failed ? "FAILED" : "ok", std::chrono::duration<double>(Clock::now() - t0).count());
  return failed ? 1 : 0;
}

}  // namespace eccl::demo
