#include "eplb/placement.h"

#include "base/error.h"

namespace eccl::eplb {

LayerPlacement LayerPlacement::fromRows(const std::vector<std::vector<int>>& rows) {
  if (rows.empty()) return {};
  LayerPlacement p(static_cast<int>(rows.size()), static_cast<int>(rows[0].size()));
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != rows[0].size())
      throw Error(ErrorCode::kInvalidArgument, "rank " + std::to_string(r) + " has " + std::to_string(rows[r].size()) +
                                                   " slots but rank 0 has " + std::to_string(rows[0].size()));
    for (size_t s = 0; s < rows[r].size(); ++s) p.set(int(r), int(s), rows[r][s]);
  }
  return p;
}

std::vector<int> LayerPlacement::row(int rank) const {
  return {experts_.begin() + size_t(rank) * slots_, experts_.begin() + size_t(rank + 1) * slots_};
}

std::vector<int> LayerPlacement::replicaCounts(int experts) const {
  std::vector<int> c(experts, 0);
  for (int e : experts_)
    if (e >= 0 && e < experts) ++c[e];
  return c;
}

std::vector<int> LayerPlacement::expertMap(int rank, int experts) const {
  std::vector<int> m(experts, -1);
  for (int s = slots_ - 1; s >= 0; --s) {
    int e = at(rank, s);
    if (e >= 0 && e < experts) m[e] = s;
  }
  return m;
}

std::vector<int> LayerPlacement::log2phy(int rank, int experts) const {
  std::vector<std::vector<int>> replicas(experts);
  for (int p = 0; p < ranks_ * slots_; ++p) {
    int e = experts_[p];
    if (e >= 0 && e < experts) replicas[e].push_back(p);
  }
  std::vector<int> own = expertMap(rank, experts);
  std::vector<int> out(experts, -1);
  for (int e = 0; e < experts; ++e) {
    if (own[e] >= 0) out[e] = physical(rank, own[e]);
    else if (!replicas[e].empty()) out[e] = replicas[e][size_t(rank + e) % replicas[e].size()];
  }
  return out;
}

void Placement::validate() const {
  auto fail = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (experts <= 0 || ranks <= 0 || slots <= 0)
    fail("placement shape must be positive: experts=" + std::to_string(experts) + " ranks=" + std::to_string(ranks) +
         " slots=" + std::to_string(slots));
  if (experts > ranks * slots)
    fail(std::to_string(experts) + " experts do not fit in " + std::to_string(ranks) + " ranks x " +
         std::to_string(slots) + " slots");
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& p = layers[l];
    std::string where = "layer " + std::to_string(l);
    if (p.ranks() != ranks) fail(where + " has " + std::to_string(p.ranks()) + " ranks, expected " + std::to_string(ranks));
    if (p.slots() != slots)
      fail(where + " has " + std::to_string(p.slots()) + " slots per rank, expected " + std::to_string(slots));
    std::vector<int> seen(experts, 0);
    for (int r = 0; r < ranks; ++r) {
      std::vector<int> onRank(experts, -1);
      for (int s = 0; s < slots; ++s) {
        int e = p.at(r, s);
        if (e < 0 || e >= experts)
          fail(where + ", rank " + std::to_string(r) + ", slot " + std::to_string(s) + ": expert id " +
               std::to_string(e) + " is out of range [0, " + std::to_string(experts) + ")");
        if (onRank[e] >= 0)
          fail(where + ", rank " + std::to_string(r) + ": expert " + std::to_string(e) + " is in slots " +
               std::to_string(onRank[e]) + " and " + std::to_string(s));
        onRank[e] = s;
        ++seen[e];
      }
    }
    for (int e = 0; e < experts; ++e)
      if (seen[e] == 0) fail(where + ": expert " + std::to_string(e) + " has no replica");
  }
}

LayerPlacement initialLayerPlacement(int experts, int ranks, int slots) {
  LayerPlacement p(ranks, slots);
  for (int i = 0; i < ranks * slots; ++i) p.set(i / slots, i % slots, i % experts);
  return p;
}

Placement initialPlacement(int layers, int experts, int ranks, int slots) {
  Placement out{experts, ranks, slots, {}};
  for (int l = 0; l < layers; ++l) out.layers.push_back(initialLayerPlacement(experts, ranks, slots));
  return out;
}

}  // namespace eccl::eplb
