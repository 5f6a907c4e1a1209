// Whole-model figures of a plan, as the eccl-eplb tool and the quality benchmark print them.
#pragma once

#include "eplb/expert_loads.h"
#include "eplb/placement.h"
#include "eplb/policy.h"

namespace eccl::eplb {

struct PlanSummary {
  int layers = 0;
  int replanned = 0;
  double meanImbalance = 0;     // mean over layers of max/mean rank load (aggregate loads)
  double maxImbalance = 0;      // worst layer
  double episodeImbalance = 0;  // mean over layers and episodes of the per-episode max/mean
  double meanGap = 0;           // mean over layers of imbalance / lower bound − 1
  double meanMoved = 0;         // replicas moved per layer
  long long totalMoved = 0;

  // Adds `other` scaled by `weight` (for averaging over cycles); maxImbalance takes the max.
  void accumulate(const PlanSummary& other, double weight);
};

PlanSummary summarizePlan(const PolicyResult& result, const ExpertLoads& loads);
// The same figures for an existing placement (nothing moved or re-planned).
PlanSummary summarizePlacement(const Placement& placement, const ExpertLoads& loads);

}  // namespace eccl::eplb
