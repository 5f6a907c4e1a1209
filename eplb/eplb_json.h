// The EPLB file formats (JSON, documented in the README):
//  - expert map, vllm-ascend's format: {"moe_layer_count": L, "layer_list": [{"layer_id": i,
//    "device_count": N, "device_list": [{"device_id": r, "device_expert": [logical id per slot]}]}]}
//  - loads: {"num_experts": E, "layers": [{"layer_id": i, "load": [E numbers]}]}, where a layer
//    may give "episodes": [[E numbers], ...] instead of (or besides) "load".
// Errors are Error(kInvalidArgument) naming the file and the field path, e.g.
// "map.json: layer_list[2].device_list[5].device_expert[1]: expected an integer".
#pragma once

#include <optional>
#include <string>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplb {

// `experts` = E when known (e.g. from the loads); otherwise the largest id + 1. Validated.
Placement readExpertMap(const std::string& path, std::optional<int> experts = std::nullopt);
Placement parseExpertMap(const std::string& text, const std::string& name, std::optional<int> experts = std::nullopt);
std::string expertMapJson(const Placement& p);

ExpertLoads readLoads(const std::string& path);
ExpertLoads parseLoads(const std::string& text, const std::string& name);
std::string loadsJson(const ExpertLoads& loads);

// Writes `text` to `path` atomically (a temporary file renamed into place): a failure never
// leaves a partial file. Throws Error(kSystem) naming the path.
void writeFileAtomically(const std::string& path, const std::string& text);

}  // namespace eccl::eplb
