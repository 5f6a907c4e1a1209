// Records expert load the way a serving engine sees it — tokens per (layer, rank, local slot),
// step by step — and turns it into logical loads (per layer, per logical expert) for the
// placement that was in force. Steps are grouped into episodes of `stepsPerEpisode` steps, so
// memory is bounded by the episode count, not the step count.
// Thread-compatible (one writer; the engine's forward loop).
#pragma once

#include <span>
#include <vector>

#include "eplb/expert_loads.h"
#include "eplb/placement.h"

namespace eccl::eplb {

class LoadRecorder {
 public:
  LoadRecorder(int layers, int ranks, int slots, int stepsPerEpisode = 1);

  // Adds `tokens` routed to slot `slot` of rank `rank` in MoE layer `layer` during this step.
  // Throws Error(kInvalidArgument) naming the index that is out of range, or a negative count.
  void record(int layer, int rank, int slot, double tokens);
  // Adds a rank's per-slot counts for one layer (size S), as an engine reports them per forward.
  void recordRank(int layer, int rank, std::span<const double> perSlot);
  // Ends the current step.
  void endStep();
  // Adds everything another recorder of the same shape saw (e.g. other ranks' views).
  void merge(const LoadRecorder& other);
  void reset();

  int steps() const { return steps_; }
  int episodes() const { return static_cast<int>(episodes_.size()); }

  // Logical loads under `placement` (same layers, ranks and slots): an expert's load is the
  // sum over the slots holding it. Episodes are the recorded ones (the current, unfinished
  // episode included if it has any step).
  ExpertLoads logicalLoads(const Placement& placement) const;

 private:
  std::vector<double>& current();
  size_t index(int layer, int rank, int slot) const { return (size_t(layer) * ranks_ + rank) * slots_ + slot; }

  int layers_, ranks_, slots_, stepsPerEpisode_;
  int steps_ = 0;
  int stepsInEpisode_ = 0;
  std::vector<std::vector<double>> episodes_;  // each layers × ranks × slots
};

}  // namespace eccl::eplb
