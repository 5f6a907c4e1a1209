#include "eplb/eplb_updater.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "eplb/eplb_json.h"
#include "eplb/load_recorder.h"
#include "eplb/plan_summary.h"
#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"

namespace eccl::eplb {
namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, "EPLB updater: " + m); }

}  // namespace

EplbUpdater::EplbUpdater(Communicator& comm, ExpertWeights& weights, Placement committed, UpdaterOptions options)
    : comm_(comm),
      weights_(weights),
      committed_(std::move(committed)),
      opts_(std::move(options)),
      schedule_(opts_.heatSteps, opts_.algorithmSteps),
      loader_(weights, comm) {
  committed_.validate();
  if (committed_.ranks != comm.size() || committed_.slots != weights.slots() || int(committed_.layers.size()) != weights.layers())
    invalid("placement of " + std::to_string(committed_.layers.size()) + " layers x " + std::to_string(committed_.ranks) +
            " ranks x " + std::to_string(committed_.slots) + " slots does not match a group of " + std::to_string(comm.size()) +
            " and weights of " + std::to_string(weights.layers()) + " layers x " + std::to_string(weights.slots()) + " slots");
  if (opts_.episodes < 1) invalid("episodes must be >= 1, got " + std::to_string(opts_.episodes));
  makePolicy(opts_.policy);  // fails now, not in the background, for an unknown name
  heat_.assign(size_t(opts_.episodes) * weights.layers() * weights.slots(), 0.0);
}

EplbUpdater::~EplbUpdater() {
  if (policy_.valid()) policy_.wait();
}

void EplbUpdater::record(int layer, std::span<const double> perSlot) {
  if (layer < 0 || layer >= weights_.layers()) invalid("record for layer " + std::to_string(layer) + " of " + std::to_string(weights_.layers()));
  if (perSlot.size() != size_t(weights_.slots()))
    invalid("record for layer " + std::to_string(layer) + " has " + std::to_string(perSlot.size()) + " slots, expected " +
            std::to_string(weights_.slots()));
  if (!schedule_.recording()) return;
  const int episode = std::min(opts_.episodes - 1, schedule_.stepsInPhase() * opts_.episodes / opts_.heatSteps);
  double* row = heat_.data() + (size_t(episode) * weights_.layers() + layer) * weights_.slots();
  for (size_t s = 0; s < perSlot.size(); ++s) row[s] += perSlot[s];
}

void EplbUpdater::beforeForward() {
  const int i = schedule_.beforeForward();
  if (i >= 0 && !loader_.inFlight()) loader_.start(*plan_, layersToApply_[i]);
}

void EplbUpdater::afterForward() {
  switch (schedule_.afterForward()) {
    case UpdaterSchedule::Action::kNone:
      return;
    case UpdaterSchedule::Action::kGatherAndPlan:
      gatherAndPlan();
      return;
    case UpdaterSchedule::Action::kCheckPlan:
      checkPlan();
      return;
    case UpdaterSchedule::Action::kFinishLayer: {
      const int layer = layersToApply_[schedule_.layerIndex()];
      TransferStats st = loader_.finish(layer, target_->layers[layer], comm_.rank());
      committed_.layers[layer] = target_->layers[layer];
      ++layersCommitted_;
      current_.bytesSent += st.bytesSent;
      current_.bytesReceived += st.bytesReceived;
      current_.transferSeconds += st.elapsed.count();
      schedule_.layerDone();
      if (schedule_.phase() != UpdaterSchedule::Phase::kApplying) finishCycle();
      return;
    }
  }
}

void EplbUpdater::gatherAndPlan() {
  const int L = weights_.layers(), S = weights_.slots(), N = comm_.size();
  std::vector<double> all(heat_.size() * N);
  comm_.allGather(heat_.data(), all.data(), heat_.size() * sizeof(double));
  std::fill(heat_.begin(), heat_.end(), 0.0);
  LoadRecorder rec(L, N, S, 1);
  for (int ep = 0; ep < opts_.episodes; ++ep) {
    for (int r = 0; r < N; ++r)
      for (int l = 0; l < L; ++l)
        rec.recordRank(l, r, std::span<const double>(all.data() + r * heat_.size() + (size_t(ep) * L + l) * S, S));
    rec.endStep();
  }
  ExpertLoads loads = rec.logicalLoads(committed_);
  // The policy sees copies: the forward loop goes on while it runs.
  policy_ = std::async(std::launch::async, [loads = std::move(loads), current = committed_, N, S, o = opts_]() mutable {
    nameThisThread("eccl-policy");
    auto t0 = std::chrono::steady_clock::now();
    PlannedCycle c{makePolicy(o.policy)->plan({&loads, &current, N, S, o.nodes, o.minDomains, o.domainsAreNodes}), {}};
    c.report.policySeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The same whole-model figures eccl-eplb prints, off the forward path.
    c.report.imbalanceBefore = summarizePlacement(current, loads).meanImbalance;
    c.report.imbalanceAfter = summarizePlan(c.result, loads).meanImbalance;
    return c;
  });
}

void EplbUpdater::checkPlan() {
  int32_t ready = policy_.wait_for(std::chrono::seconds(0)) == std::future_status::ready ? 1 : 0, everywhere = 0;
  comm_.allReduce(&ready, &everywhere, 1, DataType::kInt32, ReduceOp::kMin);
  if (!everywhere) {
    schedule_.planNotReady();
    return;
  }
  PlannedCycle c = policy_.get();
  beginApplying(c.result.placement, c.report);
}

void EplbUpdater::applyPlacement(const Placement& target) {
  if (loader_.inFlight()) loader_.wait();
  loader_.discardStaged();
  if (policy_.valid()) policy_.wait();
  policy_ = {};
  std::fill(heat_.begin(), heat_.end(), 0.0);
  CycleReport report;
  report.imbalanceBefore = report.imbalanceAfter = std::nan("");
  beginApplying(target, report);
}

void EplbUpdater::beginApplying(const Placement& target, CycleReport report) {
  TransferPlan plan = TransferPlan::build(committed_, target, weights_.layout());
  verifyPlanAgreement(comm_, plan);
  layersToApply_.clear();
  for (int l = 0; l < plan.layers(); ++l)
    if (!plan.layer(l).empty()) {
      layersToApply_.push_back(l);
      report.slotsChanged += static_cast<int>(plan.layer(l).transfers.size() + plan.layer(l).copies.size());
    }
  report.cycle = schedule_.cycle();
  report.layersChanged = static_cast<int>(layersToApply_.size());
  report.networkBytes = plan.networkBytes();
  report.minimumBytes = plan.minimumNetworkBytes();
  current_ = report;
  target_ = target;
  plan_.emplace(std::move(plan));
  logger().info("EPLB cycle {} ({}): imbalance {:.3f} -> {:.3f}, {} layers, {} slots, {:.1f} MiB to move", report.cycle,
                opts_.policy, report.imbalanceBefore, report.imbalanceAfter, report.layersChanged, report.slotsChanged,
                report.networkBytes / 1048576.0);
  if (schedule_.phase() == UpdaterSchedule::Phase::kPlanning) schedule_.planReady(report.layersChanged);
  else schedule_.applyNow(report.layersChanged);
  if (report.layersChanged == 0) finishCycle();
}

void EplbUpdater::finishCycle() {
  finished_ = current_;
  plan_.reset();
  target_.reset();
  layersToApply_.clear();
  if (!opts_.exportMapPath.empty() && comm_.rank() == 0) writeFileAtomically(opts_.exportMapPath, expertMapJson(committed_));
}

std::optional<CycleReport> EplbUpdater::takeReport() { return std::exchange(finished_, std::nullopt); }

}  // namespace eccl::eplb
