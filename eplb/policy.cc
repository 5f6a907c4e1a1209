#include "eplb/policy.h"

#include <cmath>
#include <limits>

#include "eplb/cost_model.h"
#include "eplb/default_policy.h"
#include "eplb/failure_domains.h"
#include "eplb/flash_policy.h"
#include "eplb/swift_policy.h"
#include "base/error.h"

namespace eccl::eplb {

PolicyResult PlacementPolicy::plan(const PolicyInput& in) const {
  auto fail = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (in.loads == nullptr) fail("policy input has no loads");
  ExpertLoads loads = *in.loads;
  loads.validate();
  const int E = loads.experts;
  if (in.ranks <= 0 || in.slots <= 0)
    fail("ranks and slots must be positive, got " + std::to_string(in.ranks) + " x " + std::to_string(in.slots));
  if (E > in.ranks * in.slots)
    fail(std::to_string(E) + " experts do not fit in " + std::to_string(in.ranks) + " ranks x " +
         std::to_string(in.slots) + " slots");
  if (in.slots > E)
    fail(std::to_string(in.slots) + " slots per rank for " + std::to_string(E) +
         " experts: a rank would have to hold one expert twice (use at most " + std::to_string(E) + " slots)");
  if (in.minDomains < 1) fail("minimum failure domains " + std::to_string(in.minDomains) + " must be at least 1");
  if (in.nodes <= 0 || in.ranks % in.nodes != 0)
    fail("--nodes " + std::to_string(in.nodes) + " must divide the " + std::to_string(in.ranks) + " ranks");
  if (in.current != nullptr) {
    const Placement& c = *in.current;
    if (c.experts != E) fail("current placement has " + std::to_string(c.experts) + " experts, loads have " + std::to_string(E));
    if (c.ranks != in.ranks || c.slots != in.slots)
      fail("current placement is " + std::to_string(c.ranks) + " ranks x " + std::to_string(c.slots) +
           " slots, planning for " + std::to_string(in.ranks) + " x " + std::to_string(in.slots));
    if (c.layers.size() != loads.layers.size())
      fail("current placement has " + std::to_string(c.layers.size()) + " layers, loads have " +
           std::to_string(loads.layers.size()));
    c.validate();
  }
  PolicyResult out;
  out.placement = Placement{E, in.ranks, in.slots, {}};
  for (size_t l = 0; l < loads.layers.size(); ++l) {
    const LayerPlacement* cur = in.current ? &in.current->layers[l] : nullptr;
    LayerStats st;
    LayerPlacement next = planLayer(loads.layers[l], cur, in, st.replanned);
    const auto& total = loads.layers[l].total;
    if (in.minDomains > 1) {
      const FailureDomains domains{in.minDomains, in.domainsAreNodes, in.nodes};
      const LayerPlacement before = next;
      st.belowDomains = spreadOverFailureDomains(next, total, domains);
      if (!(next == before)) st.replanned = true;
    }
    st.imbalanceBefore = cur ? imbalance(*cur, total) : std::numeric_limits<double>::quiet_NaN();
    st.imbalanceAfter = imbalance(next, total);
    st.lowerBound = lowerBoundRatio(total, in.ranks, in.slots);
    st.moved = cur ? expertsMoved(*cur, next) : 0;
    out.placement.layers.push_back(std::move(next));
    out.layers.push_back(st);
  }
  out.placement.validate();
  return out;
}

std::unique_ptr<PlacementPolicy> makePolicy(const std::string& name) {
  if (name == "default") return std::make_unique<DefaultPolicy>();
  if (name == "swift") return std::make_unique<SwiftPolicy>();
  if (name == "flash") return std::make_unique<FlashPolicy>();
  throw Error(ErrorCode::kInvalidArgument, "unknown policy '" + name + "' (expected default, swift or flash)");
}

}  // namespace eccl::eplb
