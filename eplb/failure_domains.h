// Failure-domain-aware placement: so that losing one rank (or one node) loses no expert, each
// expert should have replicas in at least `minDomains` failure domains. A pass over any policy's
// placement: experts are taken heaviest first; each missing domain gets a replica in place of a
// spare one — an empty slot, a replica whose expert keeps its domains without it, or an extra
// replica of a lighter expert — choosing the one whose expert loses least load per replica. An
// expert spread earlier is never broken, so when the redundant slots run out the lightest
// experts stay in fewer domains. It costs balance (eccl-eplb plan reports the imbalance after it).
#pragma once

#include <vector>

#include "eplb/placement.h"

namespace eccl::eplb {

struct FailureDomains {
  int minDomains = 1;   // 1 = off
  bool byNode = false;  // domains are nodes (ranks / nodes consecutive ranks each), not ranks
  int nodes = 1;
  int domainOf(int rank, int ranks) const { return byNode ? rank / (ranks / nodes) : rank; }
};

// Rewrites `p` in place; `load` has one entry per expert. Returns the number of experts left in
// fewer domains than asked (0 when the redundant slots allowed it).
int spreadOverFailureDomains(LayerPlacement& p, const std::vector<double>& load, const FailureDomains& domains);

// Experts of `p` whose replicas span fewer than min(minDomains, domain count) domains.
int expertsBelowDomains(const LayerPlacement& p, int experts, const FailureDomains& domains);

}  // namespace eccl::eplb
