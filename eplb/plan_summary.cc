#include "eplb/plan_summary.h"

#include <algorithm>

#include "eplb/cost_model.h"

namespace eccl::eplb {
namespace {

PlanSummary summarize(const Placement& placement, const ExpertLoads& loads, const std::vector<LayerStats>* stats) {
  PlanSummary s;
  s.layers = static_cast<int>(placement.layers.size());
  for (int l = 0; l < s.layers; ++l) {
    const auto& p = placement.layers[l];
    const auto& total = loads.layers[l].total;
    // A plan's stats already hold these; an existing placement is measured here.
    double imb = stats ? (*stats)[l].imbalanceAfter : imbalance(p, total);
    double lb = stats ? (*stats)[l].lowerBound : lowerBoundRatio(total, placement.ranks, placement.slots);
    s.meanImbalance += imb;
    s.maxImbalance = std::max(s.maxImbalance, imb);
    s.episodeImbalance += meanEpisodeImbalance(p, loads.layers[l]);
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
