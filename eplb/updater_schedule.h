// The EPLB updater's step-by-step state machine, apart from any I/O so it can be unit-tested.
// One cycle, in forward steps:
//   Collecting  H steps of load recording; after the H-th: gather the loads, start the policy
//   Planning    at least A steps while the policy runs in the background; from the A-th on,
//               after every step: ask whether the policy is done everywhere (never blocks)
//   Applying    one layer per step: start it before the forward, finish it after
// and back to Collecting. A plan that changes nothing goes straight back to Collecting.
// H and A default to vllm-ascend's 600 / 50. Value type; thread-compatible.
#pragma once

namespace eccl::eplb {

class UpdaterSchedule {
 public:
  enum class Phase { kCollecting, kPlanning, kApplying };
  enum class Action { kNone, kGatherAndPlan, kCheckPlan, kFinishLayer };

  // Throws Error(kInvalidArgument) for H < 1 or A < 0.
  UpdaterSchedule(int heatSteps = 600, int algorithmSteps = 50);

  // Before a forward step: the index (into this cycle's list of layers to apply) to start now,
  // or -1.
  int beforeForward() const;
  // After a forward step: what to do now. kFinishLayer's index is the one beforeForward gave.
  Action afterForward();
  // Answers to kCheckPlan: the policy is done on every rank and its plan changes `layers`
  // layers (0: nothing to apply), or it is not done yet (ask again after the next step).
  void planReady(int layers);
  void planNotReady() {}
  // After kFinishLayer, once the layer is committed: the next layer, or back to Collecting.
  void layerDone();
  // Applying a given plan now, e.g. after an elastic switch (from any phase; the cycle restarts).
  void applyNow(int layers);

  Phase phase() const { return phase_; }
  bool recording() const { return phase_ == Phase::kCollecting; }
  int cycle() const { return cycle_; }             // completed cycles
  int layerIndex() const { return applied_; }      // in Applying: the layer being applied
  int stepsInPhase() const { return steps_; }

 private:
  void restart();
  int heat_, algorithm_;
  Phase phase_ = Phase::kCollecting;
  int steps_ = 0;
  int layers_ = 0, applied_ = 0;
  int cycle_ = 0;
  bool awaitingAnswer_ = false;
};

}  // namespace eccl::eplb
