#include "eplb/elastic_transition.h"

#include "base/error.h"
#include "base/logging.h"

namespace eccl::eplb {
namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ElasticTransition::ElasticTransition(ElasticGroup& group, ExpertWeights& weights, const Placement& current,
                                     const ExpertLoads& loads, int newSize, std::vector<int> oldToNew, const std::string& policy,
                                     int nodes)
    : group_(group),
      weights_(weights),
      current_(current),
      plan_(ElasticPlan::make(current, loads, newSize, oldToNew, policy, nodes)),
      started_(std::chrono::steady_clock::now()) {
  if (current.ranks != group.size())
    throw Error(ErrorCode::kInvalidArgument, "elastic transition: the placement has " + std::to_string(current.ranks) +
                                                 " ranks, the group " + std::to_string(group.size()));
  group_.prepare({newSize, std::move(oldToNew)});
}

ElasticTransition::~ElasticTransition() = default;

int ElasticTransition::agree(int mine) {
  int32_t v = mine, all = 0;
  group_.comm().allReduce(&v, &all, 1, DataType::kInt32, ReduceOp::kMin);
  return all;
}

bool ElasticTransition::step() {
  if (phase_ == Phase::kDone) return true;
  if (phase_ == Phase::kFailed) throw Error(ErrorCode::kAborted, "elastic transition failed earlier: " + failure_);
  try {
    if (phase_ == Phase::kWaitStandby) {
      if (plan_.growing()) {
        // Enter the standby group only when every member can: a rank blocked there while
        // another still serves on the old group would wait forever.
        if (agree(group_.standbyReady() ? 1 : 0) == 1) {
          report_.standbySeconds = since(started_);
          enterMoving(group_.standbyComm());
        }
        return false;
      }
      enterMoving(group_.comm());  // shrinking: the old group carries the experts
    }
    const bool staged = progressMoving();
    if (agree(staged ? 1 : 0) == 1) {
      switchNow();
      return true;
    }
    return false;
  } catch (const std::exception& e) {
    // Nothing was committed: dropping the staged layers leaves the old placement everywhere.
    if (loader_) loader_->discardStaged();
    loader_.reset();
    phase_ = Phase::kFailed;
    failure_ = e.what();
    throw;
  }
}

void ElasticTransition::enterMoving(Communicator& carrier) {
  if (plan_.growing()) carrier.broadcastObj(carrier.rank() == 0 ? plan_.encode() : std::vector<uint8_t>{}, 0);
  transfer_.emplace(TransferPlan::build(plan_.carrierFrom(current_), plan_.carrierTo(current_), weights_.layout()));
  verifyPlanAgreement(carrier, *transfer_);
  report_.networkBytes = transfer_->networkBytes();
  report_.transfers = transfer_->transferCount();
  loader_ = std::make_unique<WeightLoader>(weights_, carrier);
  phase_ = Phase::kMoving;
  phaseStarted_ = std::chrono::steady_clock::now();
}

bool ElasticTransition::progressMoving() {
  for (;;) {
    if (loader_->inFlight()) {
      if (!loader_->ready()) return false;
      loader_->wait();
    }
    if (nextLayer_ == transfer_->layers()) {
      if (report_.moveSeconds == 0) report_.moveSeconds = since(phaseStarted_);
      return true;
    }
    loader_->start(*transfer_, nextLayer_++);
  }
}

void ElasticTransition::switchNow() {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<StagedLayer> staged = loader_->takeStaged();
  loader_.reset();  // deregisters memory while the carrier group still exists
  if (!group_.switchOver()) {
    left_ = true;
    phase_ = Phase::kDone;
    report_.switchSeconds = since(t0);
    return;
  }
  const int me = group_.rank();
  for (auto& s : staged) commitStaged(weights_, std::move(s), plan_.staged.layers[s.layer], me);
  phase_ = Phase::kDone;
  report_.switchSeconds = since(t0);
  logger().info("elastic: rank {} of {} after the switch ({} experts, {:.1f} MiB moved before it)", me, group_.size(),
                report_.transfers, report_.networkBytes / 1048576.0);
}

std::pair<std::unique_ptr<ElasticGroup>, ElasticPlan> ElasticTransition::join(std::shared_ptr<Store> store, const std::string& name,
                                                                             int newRank, int newSize, ExpertWeights& weights,
                                                                             GroupOptions options,
                                                                             ElasticReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  auto group = ElasticGroup::join(std::move(store), name, newRank, newSize, std::move(options));
  ElasticReport r;
  r.standbySeconds = since(t0);
  Communicator& comm = group->comm();
  ElasticPlan plan = ElasticPlan::decode(comm.broadcastObj({}, 0));
  if (plan.newSize != newSize || !plan.growing())
    throw Error(ErrorCode::kInvalidArgument, "elastic join: rank " + std::to_string(newRank) + " of " + std::to_string(newSize) +
                                                 " received a plan for " + std::to_string(plan.oldSize) + " -> " + std::to_string(plan.newSize) + " ranks");
  auto t1 = std::chrono::steady_clock::now();
  TransferPlan transfer = TransferPlan::build(plan.carrierFrom({}), plan.staged, weights.layout());
  verifyPlanAgreement(comm, transfer);
  {
    // Not serving yet: each layer is committed as soon as it arrived, so staging (eccl's spare
    // pool) never holds more than one layer — engine-owned weights stay the only full copy.
    WeightLoader loader(weights, comm);
    for (int l = 0; l < transfer.layers(); ++l) {
      loader.start(transfer, l);
      loader.finish(l, plan.staged.layers[l], newRank);
    }
  }
  r.moveSeconds = since(t1);
  r.networkBytes = transfer.networkBytes();
  r.transfers = transfer.transferCount();
  if (report) *report = r;
  return {std::move(group), std::move(plan)};
}

}  // namespace eccl::eplb
