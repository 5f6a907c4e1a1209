#include "eplb/expert_recovery.h"

#include <chrono>

#include "base/error.h"
#include "eplb/elastic_plan.h"
#include "eplb/policy.h"
#include "eplb/weight_loader.h"

namespace eccl::eplb {

RecoveryPlan RecoveryPlan::make(Placement survivors, const ExpertLoads& loads, const std::string& policy, int nodes) {
  if (loads.experts != survivors.experts || loads.layers.size() != survivors.layers.size())
    throw Error(ErrorCode::kInvalidArgument, "recovery plan: loads for " + std::to_string(loads.layers.size()) + " layers x " +
                                                 std::to_string(loads.experts) + " experts, placement has " +
                                                 std::to_string(survivors.layers.size()) + " x " + std::to_string(survivors.experts));
  RecoveryPlan plan;
  plan.restored = survivors;
  for (size_t l = 0; l < survivors.layers.size(); ++l) {
    auto& layer = plan.restored.layers[l];
    try {
      restoreMissingExperts(layer, loads.layers[l].total);
    } catch (const Error& e) {
      throw Error(e.code(), "recovery plan, layer " + std::to_string(l) + ": " + e.what());
    }
    for (int r = 0; r < layer.ranks(); ++r)
      for (int s = 0; s < layer.slots(); ++s)
        if (layer.at(r, s) != survivors.layers[l].at(r, s))
          plan.lost.push_back({static_cast<int>(l), layer.at(r, s), r, s});
  }
  plan.restored.validate();
  plan.target = makePolicy(policy)->plan({&loads, &plan.restored, plan.restored.ranks, plan.restored.slots, nodes}).placement;
  plan.survivors = std::move(survivors);
  return plan;
}

RecoveryPlan planRecovery(Communicator& comm, const ExpertWeights& weights, int experts, const ExpertLoads& loads,
                          const std::string& policy, int nodes) {
  const int L = weights.layers(), S = weights.slots(), N = comm.size();
  std::vector<int32_t> mine;
  for (int l = 0; l < L; ++l) {
    auto row = weights.read(l).maps().row;
    mine.insert(mine.end(), row.begin(), row.end());
  }
  std::vector<int32_t> all(mine.size() * N);
  comm.allGather(mine.data(), all.data(), mine.size() * sizeof(int32_t));
  Placement survivors{experts, N, S, {}};
  for (int l = 0; l < L; ++l) {
    LayerPlacement p(N, S);
    for (int r = 0; r < N; ++r)
      for (int s = 0; s < S; ++s) p.set(r, s, all[(size_t(r) * L + l) * S + s]);
    survivors.layers.push_back(std::move(p));
  }
  // Rank 0's loads for everyone (totals only).
  std::vector<double> totals(size_t(L) * experts, 1.0);
  const bool have = loads.experts == experts && static_cast<int>(loads.layers.size()) == L;
  if (comm.rank() == 0 && have)
    for (int l = 0; l < L; ++l)
      for (int e = 0; e < experts; ++e) totals[size_t(l) * experts + e] = loads.layers[l].total[e];
  comm.broadcast(totals.data(), totals.size() * sizeof(double), 0);
  ExpertLoads agreed{experts, {}};
  for (int l = 0; l < L; ++l)
    agreed.layers.push_back({std::vector<double>(totals.begin() + size_t(l) * experts, totals.begin() + size_t(l + 1) * experts), {}});
  return RecoveryPlan::make(std::move(survivors), agreed, policy, nodes);
}

RestoreReport restoreLostExperts(ExpertWeights& weights, const RecoveryPlan& plan, int rank, WeightSource& source) {
  const auto t0 = std::chrono::steady_clock::now();
  const int E = plan.restored.experts;
  RestoreReport report;
  report.source = source.describe();
  for (int l = 0; l < weights.layers(); ++l) weights.remap(l, layerMaps(plan.survivors.layers[l], rank, E));
  for (int l = 0; l < weights.layers(); ++l) {
    std::vector<int> slots, experts;
    for (auto& x : plan.lost)
      if (x.layer == l && x.rank == rank) {
        slots.push_back(x.slot);
        experts.push_back(x.expert);
      }
    if (slots.empty()) {
      weights.remap(l, layerMaps(plan.restored.layers[l], rank, E));
      continue;
    }
    auto staging = weights.stage(l, slots);
    for (size_t i = 0; i < slots.size(); ++i) {
      source.read(l, experts[i], staging.buffer(slots[i]));
      report.reloaded++;
      report.bytes += weights.layout().payloadBytes();
    }
    weights.commit(std::move(staging), layerMaps(plan.restored.layers[l], rank, E));
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace eccl::eplb
