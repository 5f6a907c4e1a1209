// One rank's side of an elastic membership change (ElasticPlan) while serving continues:
//
//   serving ranks (all members of the active group, at the same step):
//     ElasticTransition t(group, weights, placement, loads, newSize, oldToNew);
//     while (!t.step()) serveOneStep(group.comm());   // old group keeps serving meanwhile
//     if (t.left()) exit;                             // a leaver is done
//     placement = t.placement();                      // plan.staged, in the new numbering
//   joining processes:
//     auto [group, plan] = ElasticTransition::join(store, name, epoch + 1, newRank, newSize, weights);
//   then everyone (same step, new group): EplbUpdater(...).applyPlacement(plan.target).
//
// Before the switch the experts that must move are moved and staged, not committed: over the
// standby group to the joiners (scale-up), or over the old group from the leavers (scale-down).
// The switch happens once every member has staged everything; then each commits. If a transfer
// fails (a leaver died, a timeout) step() throws naming the peer and the weights keep the old
// placement in every layer.
//
// step() never blocks on other ranks' progress except through one small all_reduce on the old
// group per call, which is how members agree when to enter the standby group and when to switch
// (so no rank waits in one group while another waits in the other).
// Not thread-safe: the serving thread drives it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "eplb/elastic_plan.h"
#include "eplb/expert_weights.h"
#include "eplb/weight_loader.h"
#include "groups/group/elastic_group.h"

namespace eccl::eplb {

struct ElasticReport {
  double standbySeconds = 0;   // from the start until every member's standby group was built
  double moveSeconds = 0;      // moving the experts before the switch
  double switchSeconds = 0;    // switchOver (drain the old group) + commits
  uint64_t networkBytes = 0;   // moved before the switch, all ranks
  int transfers = 0;           // expert replicas moved before the switch, all ranks
};

class ElasticTransition {
 public:
  // Every member of `group`'s active epoch calls this at the same step; it prepares the next
  // epoch (standby build starts in the background). Throws Error(kInvalidArgument) for a bad
  // plan (see ElasticPlan::make).
  ElasticTransition(ElasticGroup& group, ExpertWeights& weights, const Placement& current, const ExpertLoads& loads,
                    int newSize, std::vector<int> oldToNew, const std::string& policy = "swift", int nodes = 1);
  ~ElasticTransition();

  // Makes progress; true once this rank has switched (or left). Call between forward steps on
  // every member, the same number of times. After it threw, every later call throws
  // Error(kAborted) repeating why: a failed transition is over (build a new one, or rebuild).
  bool step();
  bool left() const { return left_; }
  const ElasticPlan& plan() const { return plan_; }
  // What the weights hold after the switch (plan().staged), for this rank's new rank.
  const Placement& placement() const { return plan_.staged; }
  const ElasticReport& report() const { return report_; }

  // A process joining the next epoch: joins the group (building it with the serving ranks'
  // standby), receives the plan and its experts, commits them, and returns the group (now
  // active at options.epoch, which must be the serving ranks' next epoch) and the plan.
  // Blocks; the process is not serving yet.
  static std::pair<std::unique_ptr<ElasticGroup>, ElasticPlan> join(std::shared_ptr<Store> store, const std::string& name,
                                                                     int newRank, int newSize, ExpertWeights& weights,
                                                                     GroupOptions options,
                                                                     ElasticReport* report = nullptr);

 private:
  enum class Phase { kWaitStandby, kMoving, kDone, kFailed };
  void enterMoving(Communicator& carrier);
  bool progressMoving();  // true when every layer is staged
  void switchNow();
  int agree(int mine);    // min over the old group

  ElasticGroup& group_;
  ExpertWeights& weights_;
  Placement current_;
  ElasticPlan plan_;
  std::optional<TransferPlan> transfer_;
  std::unique_ptr<WeightLoader> loader_;
  Phase phase_ = Phase::kWaitStandby;
  int nextLayer_ = 0;
  bool left_ = false;
  std::string failure_;  // why step() failed (kFailed): later calls say so
  ElasticReport report_;
  std::chrono::steady_clock::time_point started_, phaseStarted_;
};

}  // namespace eccl::eplb
