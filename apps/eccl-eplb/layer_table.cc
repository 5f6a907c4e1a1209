#include "apps/eccl-eplb/layer_table.h"


#include "eplb/cost_model.h"

namespace eccl::eplbtool {

void printLayerTable(std::FILE* out, const eplb::Placement& p, const eplb::ExpertLoads& loads,
                     const std::vector<eplb::LayerStats>* stats, const eplb::Placement* before) {
  std::fprintf(out, "%6s %10s %10s %12s %14s %7s\n", "layer", "before", "after", "lower bound", "per-episode", "moved");
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const auto& total = loads.layers[l].total;
    double lb = stats ? (*stats)[l].lowerBound : eplb::lowerBoundRatio(total, p.ranks, p.slots);
    double after = stats ? (*stats)[l].imbalanceAfter : eplb::imbalance(p.layers[l], total);
    double episodes = eplb::meanEpisodeImbalance(p.layers[l], loads.layers[l]);
    char beforeText[32] = "-";
    if (before) std::snprintf(beforeText, sizeof(beforeText), "%.4f", eplb::imbalance(before->layers[l], total));
    int moved = stats ? (*stats)[l].moved : (before ? eplb::expertsMoved(before->layers[l], p.layers[l]) : 0);
    std::fprintf(out, "%6zu %10s %10.4f %12.4f %14.4f %7d%s\n", l, beforeText, after, lb, episodes, moved,
                 stats && !(*stats)[l].replanned ? "  (kept)" : "");
  }
}

void printSummary(std::FILE* out, const std::string& what, const eplb::PlanSummary& s, const eplb::PlanSummary* before) {
  std::fprintf(out, "\n%s: %d layers", what.c_str(), s.layers);
  if (before) std::fprintf(out, "; mean imbalance %.4f -> %.4f, worst %.4f -> %.4f", before->meanImbalance, s.meanImbalance,
                           before->maxImbalance, s.maxImbalance);
  else std::fprintf(out, "; mean imbalance %.4f, worst %.4f", s.meanImbalance, s.maxImbalance);
  std::fprintf(out, "; mean gap to lower bound %.2f%%; per-episode imbalance %.4f", 100 * s.meanGap, s.episodeImbalance);
  if (before) std::fprintf(out, "; replicas moved %lld (%.1f per layer), %d layers re-planned", s.totalMoved, s.meanMoved, s.replanned);
  std::fprintf(out, "\n");
}

}  // namespace eccl::eplbtool
