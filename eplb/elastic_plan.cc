#include "eplb/elastic_plan.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "eplb/policy.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, "elastic plan: " + m); }

// Fills every empty slot of a joining rank with the expert of the highest load per replica that
// the rank does not hold yet (ties: lower id).
void fillJoiners(LayerPlacement& p, const std::vector<double>& load, const std::vector<bool>& joiner) {
  const int E = static_cast<int>(load.size());
  std::vector<int> count = p.replicaCounts(E);
  for (int r = 0; r < p.ranks(); ++r) {
    if (!joiner[r]) continue;
    std::vector<bool> has(E, false);
    for (int s = 0; s < p.slots(); ++s) {
      int best = -1;
      for (int e = 0; e < E; ++e)
        if (!has[e] && (best < 0 || load[e] * count[best] > load[best] * count[e])) best = e;
      if (best < 0) break;  // the rank holds every expert
      p.set(r, s, best);
      has[best] = true;
      count[best]++;
    }
  }
}

void putInts(std::vector<uint8_t>& out, const std::vector<int32_t>& v) {
  const size_t at = out.size();
  out.resize(at + v.size() * 4);
  std::memcpy(out.data() + at, v.data(), v.size() * 4);
}

}  // namespace

// Puts every expert with no replica in place of a redundant one: the heaviest missing expert
// first, replacing the replica whose expert loses least (lowest load per remaining replica).
void restoreMissingExperts(LayerPlacement& p, const std::vector<double>& load) {
  const int E = static_cast<int>(load.size());
  std::vector<int> count = p.replicaCounts(E);
  std::vector<int> missing;
  for (int e = 0; e < E; ++e)
    if (count[e] == 0) missing.push_back(e);
  std::stable_sort(missing.begin(), missing.end(), [&](int a, int b) { return load[a] > load[b]; });
  for (int u : missing) {
    int bestR = -1, bestS = -1;
    double bestScore = 0;
    for (int r = 0; r < p.ranks() && (bestR < 0 || p.at(bestR, bestS) >= 0); ++r)
      for (int s = 0; s < p.slots(); ++s) {
        const int v = p.at(r, s);
        if (v < 0) {  // an empty slot costs nothing
          bestR = r, bestS = s;
          break;
        }
        if (count[v] < 2) continue;
        const double score = load[v] / (count[v] - 1);  // load per replica once this one is gone
        if (bestR < 0 || score < bestScore) bestR = r, bestS = s, bestScore = score;
      }
    if (bestR < 0)
      throw Error(ErrorCode::kInvalidArgument, "no redundant replica left to make room for expert " + std::to_string(u) + " (" +
                                                   std::to_string(E) + " experts, " + std::to_string(p.ranks()) + " ranks x " +
                                                   std::to_string(p.slots()) + " slots)");
    if (int v = p.at(bestR, bestS); v >= 0) count[v]--;
    p.set(bestR, bestS, u);
    count[u] = 1;
  }
}

Placement renumberRanks(const Placement& p, const std::vector<int>& map, int ranks) {
  Placement out{p.experts, ranks, p.slots, {}};
  for (const auto& l : p.layers) {
    LayerPlacement n(ranks, p.slots);
    for (int r = 0; r < p.ranks; ++r)
      if (map[r] >= 0)
        for (int s = 0; s < p.slots; ++s) n.set(map[r], s, l.at(r, s));
    out.layers.push_back(std::move(n));
  }
  return out;
}

Placement ElasticPlan::carrierFrom(const Placement& current) const {
  if (!growing()) return current;
  std::vector<int> stays(newSize, -1);  // new ranks some old rank maps to keep their rows
  for (int n : oldToNew)
    if (n >= 0) stays[n] = n;
  return renumberRanks(staged, stays, newSize);
}

Placement ElasticPlan::carrierTo(const Placement& current) const {
  if (growing()) return staged;
  Placement to = current;  // leavers keep their rows: they only send
  for (size_t l = 0; l < to.layers.size(); ++l)
    for (int r = 0; r < oldSize; ++r)
      if (oldToNew[r] >= 0)
        for (int s = 0; s < to.slots; ++s) to.layers[l].set(r, s, staged.layers[l].at(oldToNew[r], s));
  return to;
}

ElasticPlan ElasticPlan::make(const Placement& current, const ExpertLoads& loads, int newSize, std::vector<int> oldToNew,
                              const std::string& policy, int nodes) {
  current.validate();
  const int N = current.ranks, S = current.slots, E = current.experts;
  if (static_cast<int>(oldToNew.size()) != N) invalid("the mapping covers " + std::to_string(oldToNew.size()) + " ranks, the placement has " + std::to_string(N));
  if (newSize <= 0) invalid("new size " + std::to_string(newSize) + " must be positive");
  if (E > newSize * S) invalid(std::to_string(E) + " experts do not fit in " + std::to_string(newSize) + " ranks x " + std::to_string(S) + " slots");
  if (loads.experts != E || loads.layers.size() != current.layers.size())
    invalid("loads for " + std::to_string(loads.layers.size()) + " layers x " + std::to_string(loads.experts) + " experts, placement has " +
            std::to_string(current.layers.size()) + " x " + std::to_string(E));
  std::set<int> taken;
  int leaving = 0;
  for (int r = 0; r < N; ++r) {
    const int n = oldToNew[r];
    if (n < -1 || n >= newSize || (n >= 0 && !taken.insert(n).second))
      invalid("rank " + std::to_string(r) + " maps to " + std::to_string(n) + ", out of range or taken (new size " + std::to_string(newSize) + ")");
    leaving += n < 0;
  }
  const int joining = newSize - static_cast<int>(taken.size());
  if (leaving > 0 && joining > 0) invalid("ranks both leave and join; do it as a scale-down and a scale-up");
  if (joining > 0 && !taken.count(0)) invalid("new rank 0 must be a current rank (it sends the plan to the joiners)");

  ElasticPlan plan;
  plan.oldSize = N;
  plan.newSize = newSize;
  plan.oldToNew = oldToNew;
  Placement seed = renumberRanks(current, oldToNew, newSize);
  std::vector<bool> joiner(newSize, false);
  for (int r = 0; r < newSize; ++r) joiner[r] = !taken.count(r);
  for (size_t l = 0; l < seed.layers.size(); ++l) {
    if (joining > 0) fillJoiners(seed.layers[l], loads.layers[l].total, joiner);
    else restoreMissingExperts(seed.layers[l], loads.layers[l].total);
  }
  seed.validate();
  plan.target = makePolicy(policy)->plan({&loads, &seed, newSize, S, nodes}).placement;
  if (joining > 0) {  // serving ranks keep their rows until the switch; joiners get the target's
    plan.staged = seed;
    for (size_t l = 0; l < seed.layers.size(); ++l)
      for (int r = 0; r < newSize; ++r)
        if (joiner[r])
          for (int s = 0; s < S; ++s) plan.staged.layers[l].set(r, s, plan.target.layers[l].at(r, s));
    plan.staged.validate();
  } else {
    plan.staged = seed;
  }
  return plan;
}

std::vector<uint8_t> ElasticPlan::encode() const {
  std::vector<uint8_t> out;
  putInts(out, {oldSize, newSize, staged.experts, staged.slots, static_cast<int32_t>(staged.layers.size())});
  putInts(out, std::vector<int32_t>(oldToNew.begin(), oldToNew.end()));
  for (const Placement* p : {&staged, &target})
    for (auto& l : p->layers) putInts(out, std::vector<int32_t>(l.flat().begin(), l.flat().end()));
  return out;
}

ElasticPlan ElasticPlan::decode(const std::vector<uint8_t>& bytes) {
  size_t at = 0;
  auto take = [&](size_t n) {
    if (at + n * 4 > bytes.size()) invalid("encoded plan of " + std::to_string(bytes.size()) + " bytes is truncated");
    std::vector<int32_t> v(n);
    std::memcpy(v.data(), bytes.data() + at, n * 4);
    at += n * 4;
    return v;
  };
  auto head = take(5);
  ElasticPlan p;
  p.oldSize = head[0];
  p.newSize = head[1];
  const int E = head[2], S = head[3], L = head[4];
  if (p.oldSize <= 0 || p.newSize <= 0 || E <= 0 || S <= 0 || L < 0) invalid("encoded plan has a bad header");
  auto map = take(p.oldSize);
  p.oldToNew.assign(map.begin(), map.end());
  for (Placement* pl : {&p.staged, &p.target}) {
    *pl = Placement{E, p.newSize, S, {}};
    for (int l = 0; l < L; ++l) {
      auto flat = take(size_t(p.newSize) * S);
      LayerPlacement lp(p.newSize, S);
      for (int r = 0; r < p.newSize; ++r)
        for (int s = 0; s < S; ++s) lp.set(r, s, flat[size_t(r) * S + s]);
      pl->layers.push_back(std::move(lp));
    }
    pl->validate();
  }
  if (at != bytes.size()) invalid("encoded plan has " + std::to_string(bytes.size() - at) + " trailing bytes");
  return p;
}

}  // namespace eccl::eplb
