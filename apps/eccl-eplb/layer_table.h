// The per-layer table and summary eccl-eplb prints for plan and evaluate.
#pragma once

#include <cstdio>
#include <string>

#include "eplb/plan_summary.h"
#include "eplb/policy.h"

namespace eccl::eplbtool {

// One row per layer: before (or "-"), after, lower bound, per-episode imbalance, moved.
void printLayerTable(std::FILE* out, const eplb::Placement& placement, const eplb::ExpertLoads& loads,
                     const std::vector<eplb::LayerStats>* stats, const eplb::Placement* before);
void printSummary(std::FILE* out, const std::string& what, const eplb::PlanSummary& s, const eplb::PlanSummary* before);

}  // namespace eccl::eplbtool
