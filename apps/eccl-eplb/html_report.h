// A self-contained HTML page (inline SVG, no scripts or external files) with a heat map of
// per-rank load for every layer, after and optionally before a rebalance.
#pragma once

#include <string>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplbtool {

std::string htmlReport(const eplb::Placement& after, const eplb::ExpertLoads& loads, const eplb::Placement* before);

}  // namespace eccl::eplbtool
