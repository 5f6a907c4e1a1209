// Placement policies: given expert loads (and optionally the current placement), choose a new
// placement for N ranks × S slots. Every policy is deterministic: the same input gives the same
// output on every rank, which the transfer plan relies on.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplb {

struct PolicyInput {
  const ExpertLoads* loads = nullptr;    // required; validated
  const Placement* current = nullptr;    // optional; when given, ranks/slots must match it
  int ranks = 0;
  int slots = 0;
  // Ranks are grouped into this many nodes of N/nodes consecutive ranks; each expert's replicas
  // are spread over nodes as evenly as possible. 1 = no hierarchy.
  int nodes = 1;
  // Failure domains (eplb/failure_domains.h): each expert gets replicas in at least this many
  // ranks (or nodes, with domainsAreNodes) where the redundant slots allow it. 1 = off.
  int minDomains = 1;
  bool domainsAreNodes = false;
};

struct LayerStats {
  double imbalanceBefore = 0;  // of the current placement; NaN without one
  double imbalanceAfter = 0;   // max rank load / mean, aggregate loads
  double lowerBound = 0;       // lower bound on imbalanceAfter for any placement (cost_model.h)
  int moved = 0;               // slots whose expert changed (0 without a current placement)
  bool replanned = false;      // false when the policy kept the layer as it was
  int belowDomains = 0;        // experts in fewer failure domains than PolicyInput::minDomains asks
};

struct PolicyResult {
  Placement placement;
  std::vector<LayerStats> layers;
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual std::string name() const = 0;
  // Throws Error(kInvalidArgument) naming the problem for an invalid input.
  PolicyResult plan(const PolicyInput& input) const;

 protected:
  // One layer. `current` is null when there is no current placement. Returns the new layer.
  virtual LayerPlacement planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                                   bool& replanned) const = 0;
};

// "default", "swift" or "flash", with default parameters. Throws Error(kInvalidArgument) naming
// the unknown policy.
std::unique_ptr<PlacementPolicy> makePolicy(const std::string& name);

}  // namespace eccl::eplb
