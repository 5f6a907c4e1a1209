#include "eplb/rank_packer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>

namespace eccl::eplb {

RankPacker::RankPacker(const std::vector<std::vector<double>>& windows, int ranks, int slots, int nodes, double z)
    : windows_(windows),
      ranks_(ranks),
      slots_(slots),
      nodes_(nodes),
      ranksPerNode_(ranks / nodes),
      experts_(windows.empty() ? 0 : static_cast<int>(windows[0].size())),
      W_(static_cast<int>(windows.size())),
      z_(z) {}

double RankPacker::objective(const LayerPlacement& p, const std::vector<int>& counts) const {
  std::vector<double> load(W_);
  double worst = 0;
  for (int r = 0; r < ranks_; ++r) {
    std::fill(load.begin(), load.end(), 0.0);
    for (int s = 0; s < slots_; ++s) {
      int e = p.at(r, s);
      for (int w = 0; w < W_; ++w) load[w] += windows_[w][e] / counts[e];
    }
    worst = std::max(worst, risk(load.data()));
  }
  return worst;
}

std::optional<LayerPlacement> RankPacker::lpt(const std::vector<int>& counts) const {
  // Only complete allotments can be packed: 1..N replicas per expert, N·S in all.
  long long total = 0;
  for (int c : counts) {
    if (c < 1 || c > ranks_) return std::nullopt;
    total += c;
  }
  if (total != static_cast<long long>(ranks_) * slots_) return std::nullopt;
  struct Item {
    double weight;
    int expert;
  };
  std::vector<Item> items;
  for (int e = 0; e < experts_; ++e) {
    double mean = 0;
    for (int w = 0; w < W_; ++w) mean += windows_[w][e];
    for (int k = 0; k < counts[e]; ++k) items.push_back({mean / W_ / counts[e], e});
  }
  // With nodes, experts with several replicas go first, while every node still has room to take
  // its share of them; single replicas (no spreading to respect) fill the gaps afterwards.
  const bool spread = nodes_ > 1;
  std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    if (spread && (counts[a.expert] > 1) != (counts[b.expert] > 1)) return counts[a.expert] > 1;
    return a.weight > b.weight;
  });

  LayerPlacement p(ranks_, slots_);
  std::vector<int> used(ranks_, 0);
  std::vector<double> load(size_t(ranks_) * W_, 0.0);
  std::vector<char> holds(size_t(ranks_) * experts_, 0);
  std::vector<int> nodeCount(size_t(nodes_) * experts_, 0);
  std::vector<double> trial(W_);
  auto add = [&](int r, int s, int e) {
    p.set(r, s, e);
    holds[size_t(r) * experts_ + e] = 1;
    nodeCount[size_t(node(r)) * experts_ + e]++;
    for (int w = 0; w < W_; ++w) load[size_t(r) * W_ + w] += windows_[w][e] / counts[e];
  };
  auto remove = [&](int r, int s) {
    int e = p.at(r, s);
    holds[size_t(r) * experts_ + e] = 0;
    nodeCount[size_t(node(r)) * experts_ + e]--;
    for (int w = 0; w < W_; ++w) load[size_t(r) * W_ + w] -= windows_[w][e] / counts[e];
    p.set(r, s, -1);
  };

  // Fast path (one window, one node): the least-loaded eligible rank is the first one in load
  // order that has a free slot and lacks the expert. A min-heap of (load, rank); the few ranks
  // that hold the expert are set aside and pushed back.
  const bool ordered = W_ == 1 && nodes_ == 1;
  using Entry = std::pair<double, int>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> byLoad;
  std::vector<Entry> aside;
  if (ordered)
    for (int r = 0; r < ranks_; ++r) byLoad.push({0.0, r});

  for (const Item& it : items) {
    const int e = it.expert;
    if (ordered) {
      aside.clear();
      while (!byLoad.empty() && holds[size_t(byLoad.top().second) * experts_ + e]) {
        aside.push_back(byLoad.top());
        byLoad.pop();
      }
      const bool found = !byLoad.empty();
      if (found) {
        int r = byLoad.top().second;
        byLoad.pop();
        add(r, used[r]++, e);
        if (used[r] < slots_) byLoad.push({load[r], r});
      }
      for (auto& a : aside) byLoad.push(a);
      if (found) continue;
    }
    int fewest = std::numeric_limits<int>::max();
    for (int r = 0; r < ranks_; ++r)
      if (used[r] < slots_ && !holds[size_t(r) * experts_ + e])
        fewest = std::min(fewest, nodeCount[size_t(node(r)) * experts_ + e]);
    int best = -1;
    double bestRisk = std::numeric_limits<double>::infinity();
    for (int r = 0; r < ranks_ && fewest != std::numeric_limits<int>::max(); ++r) {
      if (used[r] >= slots_ || holds[size_t(r) * experts_ + e] || nodeCount[size_t(node(r)) * experts_ + e] != fewest) continue;
      for (int w = 0; w < W_; ++w) trial[w] = load[size_t(r) * W_ + w] + windows_[w][e] / counts[e];
      double rk = risk(trial.data());
      if (rk < bestRisk) {
        bestRisk = rk;
        best = r;
      }
    }
    if (best >= 0) {
      add(best, used[best]++, e);
      continue;
    }
    if (ordered) byLoad = {};  // the repair below changes two ranks' loads: rebuild afterwards
    // Every rank with a free slot already holds e: move some other replica y from a rank r2 that
    // lacks e into the free slot of r1 (which lacks y), and put e where y was.
    bool repaired = false;
    for (int r1 = 0; r1 < ranks_ && !repaired; ++r1) {
      if (used[r1] >= slots_) continue;
      for (int r2 = 0; r2 < ranks_ && !repaired; ++r2) {
        if (r2 == r1 || holds[size_t(r2) * experts_ + e]) continue;
        for (int s2 = 0; s2 < used[r2] && !repaired; ++s2) {
          int y = p.at(r2, s2);
          if (holds[size_t(r1) * experts_ + y]) continue;
          remove(r2, s2);
          add(r1, used[r1]++, y);
          add(r2, s2, e);
          repaired = true;
        }
      }
    }
    if (!repaired) return std::nullopt;
    if (ordered)
      for (int r = 0; r < ranks_; ++r)
        if (used[r] < slots_) byLoad.push({load[r], r});
  }
  return p;
}

void RankPacker::refine(LayerPlacement& p, const std::vector<int>& counts, int maxSwaps) const {
  std::vector<double> load(size_t(ranks_) * W_, 0.0);
  std::vector<char> holds(size_t(ranks_) * experts_, 0);
  std::vector<int> nodeCount(size_t(nodes_) * experts_, 0);
  for (int r = 0; r < ranks_; ++r)
    for (int s = 0; s < slots_; ++s) {
      int e = p.at(r, s);
      holds[size_t(r) * experts_ + e] = 1;
      nodeCount[size_t(node(r)) * experts_ + e]++;
      for (int w = 0; w < W_; ++w) load[size_t(r) * W_ + w] += windows_[w][e] / counts[e];
    }
  auto cap = [&](int e) { return (counts[e] + nodes_ - 1) / nodes_; };
  std::vector<double> riskOf(ranks_), ta(W_), tb(W_);
  for (int r = 0; r < ranks_; ++r) riskOf[r] = risk(&load[size_t(r) * W_]);

  // Partners: the least risky ranks first, at most kPartners of them (a swap with a heavy rank
  // rarely helps, and scanning every rank makes a refinement quadratic in N).
  constexpr int kPartners = 16;
  std::vector<int> order(ranks_);
  for (int iter = 0; iter < maxSwaps; ++iter) {
    int a = static_cast<int>(std::max_element(riskOf.begin(), riskOf.end()) - riskOf.begin());
    const double current = riskOf[a];
    const double eps = 1e-9 * std::max(1.0, current);
    double bestScore = current - eps;
    int bestB = -1, bestSa = -1, bestSb = -1;
    std::iota(order.begin(), order.end(), 0);
    const int partners = std::min(ranks_, kPartners + 1);
    // Every partner is scanned, so only which ranks are in the first `partners` matters.
    std::nth_element(order.begin(), order.begin() + (partners - 1), order.end(),
                     [&](int x, int y) { return riskOf[x] < riskOf[y] || (riskOf[x] == riskOf[y] && x < y); });
    for (int k = 0; k < partners; ++k) {
      const int b = order[k];
      if (b == a) continue;
      const bool crossNode = node(a) != node(b);
      for (int sa = 0; sa < slots_; ++sa) {
        const int x = p.at(a, sa);
        if (holds[size_t(b) * experts_ + x]) continue;
        if (crossNode && nodeCount[size_t(node(b)) * experts_ + x] + 1 > cap(x)) continue;
        for (int sb = 0; sb < slots_; ++sb) {
          const int y = p.at(b, sb);
          if (holds[size_t(a) * experts_ + y]) continue;
          if (crossNode && nodeCount[size_t(node(a)) * experts_ + y] + 1 > cap(y)) continue;
          for (int w = 0; w < W_; ++w) {
            double d = windows_[w][x] / counts[x] - windows_[w][y] / counts[y];
            ta[w] = load[size_t(a) * W_ + w] - d;
            tb[w] = load[size_t(b) * W_ + w] + d;
          }
          double score = std::max(risk(ta.data()), risk(tb.data()));
          if (score < bestScore) {
            bestScore = score;
            bestB = b;
            bestSa = sa;
            bestSb = sb;
          }
        }
      }
    }
    if (bestB < 0) return;
    const int x = p.at(a, bestSa), y = p.at(bestB, bestSb);
    p.set(a, bestSa, y);
    p.set(bestB, bestSb, x);
    holds[size_t(a) * experts_ + x] = 0;
    holds[size_t(a) * experts_ + y] = 1;
    holds[size_t(bestB) * experts_ + y] = 0;
    holds[size_t(bestB) * experts_ + x] = 1;
    nodeCount[size_t(node(a)) * experts_ + x]--;
    nodeCount[size_t(node(a)) * experts_ + y]++;
    nodeCount[size_t(node(bestB)) * experts_ + y]--;
    nodeCount[size_t(node(bestB)) * experts_ + x]++;
    for (int w = 0; w < W_; ++w) {
      double d = windows_[w][x] / counts[x] - windows_[w][y] / counts[y];
      load[size_t(a) * W_ + w] -= d;
      load[size_t(bestB) * W_ + w] += d;
    }
    riskOf[a] = risk(&load[size_t(a) * W_]);
    riskOf[bestB] = risk(&load[size_t(bestB) * W_]);
  }
}

}  // namespace eccl::eplb
