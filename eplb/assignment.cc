#include "eplb/assignment.h"

#include <algorithm>
#include <limits>

namespace eccl::eplb {

std::vector<int> minCostAssignment(const std::vector<std::vector<double>>& a) {
  // Potentials-based Hungarian algorithm over 1-indexed rows/columns.
  const int n = static_cast<int>(a.size());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      int i0 = p[j0], j1 = 0;
      double delta = inf;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        double cur = a[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> col(n, -1);
  for (int j = 1; j <= n; ++j)
    if (p[j] > 0) col[p[j] - 1] = j - 1;
  return col;
}

LayerPlacement keepSlots(const LayerPlacement& next, const LayerPlacement& current) {
  LayerPlacement out(next.ranks(), next.slots());
  for (int r = 0; r < next.ranks(); ++r) {
    std::vector<int> row = next.row(r), old = current.row(r);
    std::vector<char> placed(row.size(), 0), taken(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      auto it = std::find(old.begin(), old.end(), row[i]);
      if (it == old.end()) continue;
      size_t s = static_cast<size_t>(it - old.begin());
      if (taken[s]) continue;
      out.set(r, static_cast<int>(s), row[i]);
      taken[s] = placed[i] = 1;
    }
    size_t free = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      if (placed[i]) continue;
      while (taken[free]) ++free;
      out.set(r, static_cast<int>(free), row[i]);
      taken[free] = 1;
    }
  }
  return out;
}

LayerPlacement matchRanksAndSlots(const LayerPlacement& next, const LayerPlacement& current, int nodes) {
  const int n = next.ranks(), per = n / nodes;
  LayerPlacement permuted(n, next.slots());
  for (int k = 0; k < nodes; ++k) {
    std::vector<std::vector<double>> cost(per, std::vector<double>(per, 0.0));
    for (int i = 0; i < per; ++i) {
      auto row = next.row(k * per + i);
      for (int j = 0; j < per; ++j) {
        auto old = current.row(k * per + j);
        int shared = 0;
        for (int e : row) shared += std::count(old.begin(), old.end(), e) > 0;
        cost[i][j] = -shared;
      }
    }
    auto col = minCostAssignment(cost);
    for (int i = 0; i < per; ++i)
      for (int s = 0; s < next.slots(); ++s) permuted.set(k * per + col[i], s, next.at(k * per + i, s));
  }
  return keepSlots(permuted, current);
}

}  // namespace eccl::eplb
