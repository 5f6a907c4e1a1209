// The EPLB updater of one rank, driven by the serving loop (vllm-ascend's eplb_updator, with the
// policy off the forward path and the plan checked across ranks):
//
//   for each step:  updater.beforeForward();   // may start one layer's expert transfer
//                   forward ... updater.record(layer, tokensPerLocalSlot) per MoE layer
//                   updater.afterForward();    // may gather loads, poll the policy, commit a layer
//
// Every rank of the communicator must drive it in lockstep (same steps), since gathering loads,
// polling the policy and moving layers are collective. Timing per cycle: UpdaterSchedule. The
// policy runs on a background thread; when it is late on any rank the ranks keep serving and
// ask again next step, so the forward loop never waits for it. Before any byte moves, ranks
// compare plan digests. A failed transfer throws from afterForward() with that layer (and every
// later one) still in its old placement; the communicator is then broken, so is the updater.
// Not thread-safe: one thread (the serving loop) drives it.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "eplb/expert_weights.h"
#include "eplb/policy.h"
#include "eplb/transfer_plan.h"
#include "eplb/updater_schedule.h"
#include "eplb/weight_loader.h"

namespace eccl::eplb {

struct UpdaterOptions {
  int heatSteps = 600;       // H: steps of load collection per cycle
  int algorithmSteps = 50;   // A: steps the policy gets before the ranks first ask for its result
  std::string policy = "swift";
  int nodes = 1;             // see PolicyInput::nodes
  int minDomains = 1;        // see PolicyInput::minDomains: > 1 so a lost rank (node) loses no expert
  bool domainsAreNodes = false;
  int episodes = 10;         // the heat window is split into this many episodes (for swift/flash)
  std::string exportMapPath; // when set, rank 0 writes the expert map JSON here after every cycle
};

// One finished cycle, as this rank saw it. Imbalances are means over layers on the gathered loads.
struct CycleReport {
  int cycle = 0;
  double imbalanceBefore = 0, imbalanceAfter = 0;
  int layersChanged = 0;
  int slotsChanged = 0;            // over all ranks and layers
  uint64_t networkBytes = 0;       // over all ranks
  uint64_t minimumBytes = 0;
  uint64_t bytesSent = 0, bytesReceived = 0;  // this rank
  double transferSeconds = 0;      // this rank: Σ over layers of start → finished
  double policySeconds = 0;        // this rank's policy run
};

class EplbUpdater {
 public:
  // `committed` is the placement `weights` holds now (for `comm`'s ranks). Throws
  // Error(kInvalidArgument) for a placement that does not match the weights or the group.
  EplbUpdater(Communicator& comm, ExpertWeights& weights, Placement committed, UpdaterOptions options = {});
  ~EplbUpdater();

  // Tokens routed this step to each local slot of `layer` (size slots). Ignored outside the
  // collection phase.
  void record(int layer, std::span<const double> perSlot);
  void beforeForward();
  void afterForward();
  // Moves to `target` from the next step on, one layer per step (the same call on every rank at
  // the same step), e.g. to rebalance right after an elastic switch. Discards a cycle in progress.
  void applyPlacement(const Placement& target);

  const Placement& placement() const { return committed_; }  // what the weights hold now
  const UpdaterSchedule& schedule() const { return schedule_; }
  // Layers committed so far (a caller compares it across a step to learn whether maps changed).
  uint64_t layersCommitted() const { return layersCommitted_; }
  // True between a beforeForward() that started a layer's transfer and the afterForward() that
  // commits it.
  bool transferInFlight() const { return loader_.inFlight(); }
  // The report of the cycle that finished at the last afterForward(), once.
  std::optional<CycleReport> takeReport();

 private:
  void gatherAndPlan();
  void checkPlan();
  void beginApplying(const Placement& target, CycleReport report);
  void finishCycle();

  Communicator& comm_;
  ExpertWeights& weights_;
  Placement committed_;
  UpdaterOptions opts_;
  UpdaterSchedule schedule_;
  WeightLoader loader_;
  std::vector<double> heat_;  // episodes × layers × slots, this rank's slots
  struct PlannedCycle {
    PolicyResult result;
    CycleReport report;  // imbalances and policy time filled in
  };
  std::future<PlannedCycle> policy_;
  std::optional<Placement> target_;
  std::optional<TransferPlan> plan_;
  std::vector<int> layersToApply_;
  CycleReport current_;
  std::optional<CycleReport> finished_;
  uint64_t layersCommitted_ = 0;
};

}  // namespace eccl::eplb
