// Putting experts back after ranks failed, once ElasticGroup::recover() has built the survivors'
// group: every replica a survivor still holds stays where it is; each expert whose every replica
// was lost is read from a WeightSource (the checkpoint) into the place of a redundant replica;
// then the policy rebalances as usual, moving experts between survivors over the new group.
//
//   auto res = group.recover();
//   auto plan = planRecovery(group.comm(), weights, loads, "swift");   // collective
//   auto report = restoreLostExperts(weights, plan, group.rank(), checkpoint);
//   EplbUpdater updater(group.comm(), weights, plan.restored, ...);
//   updater.applyPlacement(plan.target);                              // one layer per step
#pragma once

#include <string>
#include <vector>

#include "comm/communicator.h"
#include "eplb/expert_loads.h"
#include "eplb/expert_weights.h"
#include "eplb/placement.h"
#include "eplb/weight_source.h"

namespace eccl::eplb {

// An expert no survivor held, and where `restored` puts it (numbering of the recovered group).
struct LostExpert {
  int layer = 0, expert = 0, rank = 0, slot = 0;
};

struct RecoveryPlan {
  Placement survivors;  // what the survivors hold: lost experts have no replica (routing: unavailable)
  Placement restored;   // survivors + one copy of every lost expert, in place of a redundant replica
  Placement target;     // the policy's placement planned from `restored`
  std::vector<LostExpert> lost;

  // Pure. `survivors` may lack experts; `loads` decide which redundant replicas make room (the
  // least loaded per replica first). Throws Error(kInvalidArgument) when lost experts cannot fit
  // (fewer redundant replicas left than experts lost) or for loads of another shape.
  static RecoveryPlan make(Placement survivors, const ExpertLoads& loads, const std::string& policy, int nodes = 1);
};

// Collective on the recovered group: gathers what every survivor's weights really hold (true
// even where a crash interrupted a layer's commit) and rank 0's loads (survivors may have
// recorded different steps; empty loads = uniform), so every rank makes the same plan.
RecoveryPlan planRecovery(Communicator& comm, const ExpertWeights& weights, int experts, const ExpertLoads& loads,
                          const std::string& policy, int nodes = 1);

struct RestoreReport {
  int reloaded = 0;       // experts this rank read from the source
  uint64_t bytes = 0;     // their payload bytes
  double seconds = 0;
  std::string source;
};

// Every survivor, before its next forward: first routes every layer by plan.survivors (nothing
// goes to a failed rank; a lost expert's log2phy is −1, unavailable), then reads the lost experts
// plan.restored gives `rank` from `source` and commits them layer by layer. Throws the source's
// error naming layer and expert; layers not restored yet keep routing around their lost experts.
RestoreReport restoreLostExperts(ExpertWeights& weights, const RecoveryPlan& plan, int rank, WeightSource& source);

}  // namespace eccl::eplb
