#include "eplb/plan_summary.h"

#include <algorithm>
#include <numeric>

#include "eplb/cost_model.h"

namespace eccl::eplb {
namespace {

double episodeImbalance(const LayerPlacement& p, const LayerLoads& loads) {
  auto windows = loads.windows();
  double sum = 0;
  for (auto& w : windows) sum += imbalance(p, w);
  return windows.empty() ? 1.0 : sum / windows.size();
}

PlanSummary summarize(const Placement& placement, const ExpertLoads& loads, const std::vector<LayerStats>* stats) {
  PlanSummary s;
  s.layers = static_cast<int>(placement.layers.size());
  for (int l = 0; l < s.layers; ++l) {
    const auto& p = placement.layers[l];
    const auto& total = loads.layers[l].total;
    double imb = imbalance(p, total);
    double mean = std::accumulate(total.begin(), total.end(), 0.0) / placement.ranks;
    double lb = mean > 0 ? lowerBound(total, placement.ranks, placement.slots) / mean : 1.0;
    s.meanImbalance += imb;
    s.maxImbalance = std::max(s.maxImbalance, imb);
    s.episodeImbalance += episodeImbalance(p, loads.layers[l]);
    s.meanGap += imb / lb - 1;
    if (stats) {
      s.totalMoved += (*stats)[l].moved;
      s.replanned += (*stats)[l].replanned;
    }
  }
  if (s.layers > 0) {
    s.meanImbalance /= s.layers;
    s.episodeImbalance /= s.layers;
    s.meanGap /= s.layers;
    s.meanMoved = double(s.totalMoved) / s.layers;
  }
  return s;
}

}  // namespace

void PlanSummary::accumulate(const PlanSummary& o, double w) {
  layers += o.layers;
  replanned += o.replanned;
  meanImbalance += w * o.meanImbalance;
  maxImbalance = std::max(maxImbalance, o.maxImbalance);
  episodeImbalance += w * o.episodeImbalance;
  meanGap += w * o.meanGap;
  meanMoved += w * o.meanMoved;
  totalMoved += o.totalMoved;
}

PlanSummary summarizePlan(const PolicyResult& r, const ExpertLoads& loads) {
  return summarize(r.placement, loads, &r.layers);
}

PlanSummary summarizePlacement(const Placement& p, const ExpertLoads& loads) { return summarize(p, loads, nullptr); }

}  // namespace eccl::eplb
