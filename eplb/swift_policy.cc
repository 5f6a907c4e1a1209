#include "eplb/swift_policy.h"

#include <algorithm>
#include <numeric>

#include "eplb/cost_model.h"
#include "eplb/default_policy.h"
#include "eplb/replica_allotment.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

// Incremental state of one layer while swift moves replicas around.
class SwiftLayer {
 public:
  SwiftLayer(LayerPlacement p, const std::vector<double>& l, int nodes)
      : p_(std::move(p)), l_(l), E_(static_cast<int>(l.size())), N_(p_.ranks()), S_(p_.slots()), nodes_(nodes) {
    c_ = p_.replicaCounts(E_);
    holders_.assign(E_, {});
    for (int r = 0; r < N_; ++r)
      for (int s = 0; s < S_; ++s) holders_[p_.at(r, s)].push_back(r);
    load_ = rankLoads(p_, l_);
  }

  // Phase 1: moves one replica from an expert above its target count to the hottest expert
  // below its target (per replica), into the slot that leaves the lightest rank. Returns false
  // when every target is met or no slot qualifies.
  bool reallot(const std::vector<int>& target) {
    int x = -1;
    for (int e = 0; e < E_; ++e)
      if (c_[e] < target[e] && (x < 0 || l_[e] / c_[e] > l_[x] / c_[x])) x = e;
    if (x < 0) return false;
    int bestB = -1, bestS = -1;
    double bestLoad = 0;
    for (int b = 0; b < N_; ++b) {
      if (holds(b, x) || !spreadAfterAdd(x, b)) continue;
      for (int s = 0; s < S_; ++s) {
        int y = p_.at(b, s);
        if (c_[y] <= target[y]) continue;
        double after = load_[b] - l_[y] / c_[y] + l_[x] / (c_[x] + 1);
        if (bestB < 0 || after < bestLoad) {
          bestLoad = after;
          bestB = b;
          bestS = s;
        }
      }
    }
    if (bestB < 0) return false;
    apply({Move::kReplicate, -1, -1, bestB, bestS}, x);
    return true;
  }

  // Phase 2: applies the best move that lowers the most loaded rank by at least `minGain`;
  // returns its cost in moved replicas, or 0 if none does.
  int step(int budget, double minGain) {
    const int a = static_cast<int>(std::max_element(load_.begin(), load_.end()) - load_.begin());
    double best = load_[a] - minGain;
    Move move;
    int moveExpert = -1;
    // Swaps between a and b: only those two ranks change.
    for (int b = 0; budget >= 2 && b < N_; ++b) {
      if (b == a) continue;
      for (int sa = 0; sa < S_; ++sa)
        for (int sb = 0; sb < S_; ++sb) {
          int x = p_.at(a, sa), y = p_.at(b, sb);
          if (holds(b, x) || holds(a, y) || !spreadOk(x, b, a) || !spreadOk(y, a, b)) continue;
          double d = l_[x] / c_[x] - l_[y] / c_[y];
          double score = std::max(load_[a] - d, load_[b] + d);
          if (score < best) {
            best = score;
            move = {Move::kSwap, a, sa, b, sb};
          }
        }
    }
    // Re-replication of an expert x on rank a into slot sb of rank b (replacing y, c_y >= 2).
    std::vector<double> trial;
    for (int sa = 0; sa < S_; ++sa) {
      int x = p_.at(a, sa);
      if (c_[x] >= N_) continue;
      for (int b = 0; b < N_; ++b) {
        if (holds(b, x) || !spreadAfterAdd(x, b)) continue;
        for (int sb = 0; sb < S_; ++sb) {
          int y = p_.at(b, sb);
          if (c_[y] < 2) continue;
          trial = load_;
          for (int r : holders_[x]) trial[r] += l_[x] / (c_[x] + 1) - l_[x] / c_[x];
          for (int r : holders_[y]) trial[r] += l_[y] / (c_[y] - 1) - l_[y] / c_[y];
          trial[b] += -l_[y] / (c_[y] - 1) + l_[x] / (c_[x] + 1);
          // Only the ranks this move touches change; the others are at most load_[a] already.
          double score = trial[b];
          for (int r : holders_[x]) score = std::max(score, trial[r]);
          for (int r : holders_[y]) score = std::max(score, trial[r]);
          if (score < best) {
            best = score;
            move = {Move::kReplicate, a, sa, b, sb};
            moveExpert = x;
          }
        }
      }
    }
    if (move.kind == Move::kNone) return 0;
    apply(move, moveExpert);
    return move.kind == Move::kSwap ? 2 : 1;
  }

  const LayerPlacement& placement() const { return p_; }

 private:
  struct Move {
    enum Kind { kNone, kSwap, kReplicate } kind = kNone;
    int a = -1, sa = -1, b = -1, sb = -1;
  };
  bool holds(int r, int e) const { return std::find(holders_[e].begin(), holders_[e].end(), r) != holders_[e].end(); }
  int node(int r) const { return r / (N_ / nodes_); }
  int onNode(int e, int k) const {
    int n = 0;
    for (int r : holders_[e]) n += node(r) == k;
    return n;
  }
  // Moving e from rank `from` to rank `to` keeps e's replicas spread over nodes.
  bool spreadOk(int e, int to, int from) const {
    if (nodes_ == 1 || node(to) == node(from)) return true;
    return onNode(e, node(to)) + 1 <= (c_[e] + nodes_ - 1) / nodes_;
  }
  bool spreadAfterAdd(int e, int to) const {
    if (nodes_ == 1) return true;
    return onNode(e, node(to)) + 1 <= (c_[e] + 1 + nodes_ - 1) / nodes_;
  }
  void drop(int e, int r) { holders_[e].erase(std::find(holders_[e].begin(), holders_[e].end(), r)); }
  // A swap exchanges slots (a, sa) and (b, sb); a replication puts expert x into (b, sb).
  void apply(const Move& m, int x) {
    int y = p_.at(m.b, m.sb);
    if (m.kind == Move::kSwap) {
      x = p_.at(m.a, m.sa);
      p_.set(m.a, m.sa, y);
      p_.set(m.b, m.sb, x);
      drop(x, m.a);
      drop(y, m.b);
      holders_[x].push_back(m.b);
      holders_[y].push_back(m.a);
    } else {
      p_.set(m.b, m.sb, x);
      drop(y, m.b);
      holders_[x].push_back(m.b);
      ++c_[x];
      --c_[y];
    }
    load_ = rankLoads(p_, l_);
  }

  LayerPlacement p_;
  const std::vector<double>& l_;
  int E_, N_, S_, nodes_;
  std::vector<int> c_;
  std::vector<std::vector<int>> holders_;
  std::vector<double> load_;
};

}  // namespace

LayerPlacement SwiftPolicy::planLayer(const LayerLoads& loads, const LayerPlacement* current, const PolicyInput& in,
                                      bool& replanned) const {
  if (current == nullptr) {
    auto fresh = planDefaultLayer(loads.total, in);
    if (!fresh)  // without a current placement swift starts from the default plan: the sizes are the cause
      throw Error(ErrorCode::kInvalidArgument, "swift policy: no valid packing for " + std::to_string(in.ranks) +
                                                   " ranks x " + std::to_string(in.slots) + " slots (planned from scratch, "
                                                   "as there is no current placement)");
    replanned = true;
    return *fresh;
  }
  const auto& total = loads.total;
  double before = imbalance(*current, total);
  replanned = false;
  if (before < opts_.imbalanceThreshold) return *current;
  int budget = opts_.maxMoves >= 0 ? opts_.maxMoves : std::max(8, in.ranks * in.slots / 4);
  SwiftLayer layer(*current, total, in.nodes);
  // Phase 1: bring replica counts to the min-max-replica targets, hottest deficit first.
  auto target = minMaxReplicaAllotment(total, in.ranks * in.slots, in.ranks);
  while (budget > 0 && layer.reallot(target)) --budget;
  // Phase 2: improving moves; gains under minGain × the mean rank load are not worth a transfer.
  const double minGain = opts_.minGain * std::accumulate(total.begin(), total.end(), 0.0) / in.ranks;
  while (budget > 0) {
    int cost = layer.step(budget, std::max(minGain, 1e-12));
    if (cost == 0) break;
    budget -= cost;
  }
  if (imbalance(layer.placement(), total) >= before) return *current;
  replanned = true;
  return layer.placement();
}

}  // namespace eccl::eplb
