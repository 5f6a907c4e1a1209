// Packs a given number of replicas per expert into N ranks × S slots: never two replicas of one
// expert on a rank, each expert's replicas spread over nodes as evenly as possible.
// The objective is the largest rank "risk": over the load windows (episodes), the mean of the
// rank's load plus z·std; with one window that is simply the rank's load.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "eplb/placement.h"

namespace eccl::eplb {

class RankPacker {
 public:
  // windows[w][e] = load of expert e in window w.
  RankPacker(const std::vector<std::vector<double>>& windows, int ranks, int slots, int nodes, double z);

  // Longest processing time first: replicas by mean load per replica, heaviest first (ties: lower
  // expert id; with nodes, experts with several replicas before single ones), each to the
  // eligible rank with the lowest risk after adding it (ties: lower rank).
  // Eligible: a free slot, not holding the expert, on a node holding fewest of its replicas.
  // nullopt for an allotment that is not 1..N replicas per expert and N·S in all, or when a
  // replica has nowhere to go even after a repair swap.
  std::optional<LayerPlacement> lpt(const std::vector<int>& counts) const;

  // Swaps one replica of the riskiest rank with one of another rank while that lowers the larger
  // of the two below the riskiest; stops when no swap helps or after maxSwaps.
  void refine(LayerPlacement& p, const std::vector<int>& counts, int maxSwaps) const;

  double objective(const LayerPlacement& p, const std::vector<int>& counts) const;

 private:
  // Inline: it is called for every candidate move.
  double risk(const double* load) const {
    if (W_ == 1) return load[0];
    double sum = 0, sq = 0;
    for (int w = 0; w < W_; ++w) {
      sum += load[w];
      sq += load[w] * load[w];
    }
    double mean = sum / W_;
    return mean + z_ * std::sqrt(std::max(0.0, sq / W_ - mean * mean));
  }
  int node(int rank) const { return rank / ranksPerNode_; }

  std::vector<std::vector<double>> windows_;
  int ranks_, slots_, nodes_, ranksPerNode_, experts_, W_;
  double z_;
};

}  // namespace eccl::eplb
