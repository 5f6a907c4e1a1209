// Where every expert replica lives. For one MoE layer: N ranks × S slots, each slot holding a
// logical expert id in [0, E). Physical id of (rank, slot) = rank·S + slot.
// Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eccl::eplb {

class LayerPlacement {
 public:
  LayerPlacement() = default;
  LayerPlacement(int ranks, int slots) : ranks_(ranks), slots_(slots), experts_(size_t(ranks) * slots, -1) {}
  // rows[r][s] = logical expert in slot s of rank r. Rows must all have the same length.
  static LayerPlacement fromRows(const std::vector<std::vector<int>>& rows);

  int ranks() const { return ranks_; }
  int slots() const { return slots_; }
  int at(int rank, int slot) const { return experts_[size_t(rank) * slots_ + slot]; }
  void set(int rank, int slot, int expert) { experts_[size_t(rank) * slots_ + slot] = expert; }
  int physical(int rank, int slot) const { return rank * slots_ + slot; }
  std::vector<int> row(int rank) const;
  const std::vector<int>& flat() const { return experts_; }

  // Copies of each logical expert, size E.
  std::vector<int> replicaCounts(int experts) const;
  // Per rank: logical id -> local slot holding it, or -1 (size E). The lowest slot if a rank were
  // to hold an expert twice (validation rejects that).
  std::vector<int> expertMap(int rank, int experts) const;
  // Per rank: logical id -> the physical replica this rank routes that expert's tokens to.
  // Rule: a rank that holds the expert uses its own replica; otherwise, with the expert's
  // replicas listed in physical-id order p_0 < p_1 < ... < p_{c-1}, rank r uses p_{(r + e) mod c}.
  // Non-holding ranks are thus spread evenly (±1) over the replicas, and adding e to r keeps
  // different experts from all favouring their first replica. -1 for an expert with no replica.
  std::vector<int> log2phy(int rank, int experts) const;

  bool operator==(const LayerPlacement&) const = default;

 private:
  int ranks_ = 0;
  int slots_ = 0;
  std::vector<int> experts_;  // rank-major
};

// A placement for every MoE layer of a model, all with the same shape.
struct Placement {
  int experts = 0;  // E logical experts per layer
  int ranks = 0;    // N
  int slots = 0;    // S per rank
  std::vector<LayerPlacement> layers;

  int redundant() const { return ranks * slots - experts; }
  // Throws Error(kInvalidArgument) naming the layer, rank, slot and expert for the first
  // violation: wrong shape, an id out of range, an expert twice on one rank, an expert with no
  // replica, or E > N·S.
  void validate() const;
};

// vllm-ascend's default initial layout: experts 0..E-1 in order, then redundant copies of
// 0, 1, 2, ... (mod E), filled rank-major.
LayerPlacement initialLayerPlacement(int experts, int ranks, int slots);
Placement initialPlacement(int layers, int experts, int ranks, int slots);

}  // namespace eccl::eplb
