#include "eplb/failure_domains.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace eccl::eplb {
namespace {

std::vector<std::multiset<int>> domainsHeld(const LayerPlacement& p, int experts, const FailureDomains& d) {
  std::vector<std::multiset<int>> out(experts);
  for (int r = 0; r < p.ranks(); ++r)
    for (int s = 0; s < p.slots(); ++s)
      if (int e = p.at(r, s); e >= 0) out[e].insert(d.domainOf(r, p.ranks()));
  return out;
}

int distinct(const std::multiset<int>& m) { return static_cast<int>(std::set<int>(m.begin(), m.end()).size()); }

int domainCount(const LayerPlacement& p, const FailureDomains& d) { return d.byNode ? d.nodes : p.ranks(); }

}  // namespace

int expertsBelowDomains(const LayerPlacement& p, int experts, const FailureDomains& d) {
  const int need = std::min(d.minDomains, domainCount(p, d));
  int below = 0;
  for (auto& held : domainsHeld(p, experts, d)) below += distinct(held) < need;
  return below;
}

int spreadOverFailureDomains(LayerPlacement& p, const std::vector<double>& load, const FailureDomains& d) {
  const int E = static_cast<int>(load.size());
  const int need = std::min(d.minDomains, domainCount(p, d));
  if (need <= 1) return 0;
  auto held = domainsHeld(p, E, d);
  std::vector<int> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return load[a] > load[b]; });
  std::vector<int> position(E);
  for (int i = 0; i < E; ++i) position[order[i]] = i;
  int below = 0;
  for (int e : order) {
    while (distinct(held[e]) < need) {
      int bestR = -1, bestS = -1;
      double bestCost = 0;
      for (int r = 0; r < p.ranks(); ++r) {
        const int dom = d.domainOf(r, p.ranks());
        if (held[e].count(dom)) continue;
        for (int s = 0; s < p.slots(); ++s) {
          const int v = p.at(r, s);
          double cost;
          if (v < 0) {
            cost = -1;  // an empty slot costs nothing
          } else {
            const auto n = static_cast<int>(held[v].size());
            // Spare: v keeps a replica, and either keeps its domains (another replica in this
            // domain, or more domains than required) or is lighter than e (not spread yet:
            // heavier experts come first).
            const bool sameDomainTwin = held[v].count(dom) > 1;
            const bool keepsDomains = sameDomainTwin || distinct(held[v]) > need;
            if (n < 2 || (!keepsDomains && position[v] < position[e])) continue;
            cost = load[v] / (n - 1);
          }
          if (bestR < 0 || cost < bestCost) bestR = r, bestS = s, bestCost = cost;
        }
      }
      if (bestR < 0) break;  // no spare replica outside e's domains: redundancy exhausted
      if (int v = p.at(bestR, bestS); v >= 0) held[v].erase(held[v].find(d.domainOf(bestR, p.ranks())));
      p.set(bestR, bestS, e);
      held[e].insert(d.domainOf(bestR, p.ranks()));
    }
    below += distinct(held[e]) < need;
  }
  return below;
}

}  // namespace eccl::eplb
