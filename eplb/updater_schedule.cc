#include "eplb/updater_schedule.h"

#include <string>

#include "base/error.h"

namespace eccl::eplb {

UpdaterSchedule::UpdaterSchedule(int heatSteps, int algorithmSteps) : heat_(heatSteps), algorithm_(algorithmSteps) {
  if (heatSteps < 1 || algorithmSteps < 0)
    throw Error(ErrorCode::kInvalidArgument, "EPLB intervals: heat collection " + std::to_string(heatSteps) +
                                                 " steps (must be >= 1), algorithm " + std::to_string(algorithmSteps) +
                                                 " steps (must be >= 0)");
}

int UpdaterSchedule::beforeForward() const { return phase_ == Phase::kApplying ? applied_ : -1; }

UpdaterSchedule::Action UpdaterSchedule::afterForward() {
  ++steps_;
  switch (phase_) {
    case Phase::kCollecting:
      if (steps_ < heat_) return Action::kNone;
      phase_ = Phase::kPlanning;
      steps_ = 0;
      return Action::kGatherAndPlan;
    case Phase::kPlanning:
      if (steps_ < algorithm_) return Action::kNone;
      awaitingAnswer_ = true;
      return Action::kCheckPlan;
    case Phase::kApplying:
      return Action::kFinishLayer;
  }
  return Action::kNone;
}

void UpdaterSchedule::planReady(int layers) {
  if (phase_ != Phase::kPlanning || !awaitingAnswer_)
    throw Error(ErrorCode::kInvalidArgument, "planReady() outside the planning phase's check");
  applyNow(layers);
}

void UpdaterSchedule::applyNow(int layers) {
  awaitingAnswer_ = false;
  if (layers <= 0) {
    restart();
    return;
  }
  phase_ = Phase::kApplying;
  layers_ = layers;
  applied_ = 0;
  steps_ = 0;
}

void UpdaterSchedule::layerDone() {
  if (phase_ != Phase::kApplying) throw Error(ErrorCode::kInvalidArgument, "layerDone() outside the applying phase");
  if (++applied_ == layers_) restart();
}

void UpdaterSchedule::restart() {
  phase_ = Phase::kCollecting;
  steps_ = 0;
  layers_ = applied_ = 0;
  ++cycle_;
}

}  // namespace eccl::eplb
