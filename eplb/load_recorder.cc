#include "eplb/load_recorder.h"

#include <cmath>
#include <string>

#include "base/error.h"

namespace eccl::eplb {

LoadRecorder::LoadRecorder(int layers, int ranks, int slots, int stepsPerEpisode)
    : layers_(layers), ranks_(ranks), slots_(slots), stepsPerEpisode_(stepsPerEpisode) {
  if (layers <= 0 || ranks <= 0 || slots <= 0 || stepsPerEpisode <= 0)
    throw Error(ErrorCode::kInvalidArgument, "LoadRecorder shape must be positive: layers=" + std::to_string(layers) +
                                                 " ranks=" + std::to_string(ranks) + " slots=" + std::to_string(slots) +
                                                 " stepsPerEpisode=" + std::to_string(stepsPerEpisode));
}

std::vector<double>& LoadRecorder::current() {
  if (episodes_.empty() || stepsInEpisode_ >= stepsPerEpisode_) {
    episodes_.emplace_back(size_t(layers_) * ranks_ * slots_, 0.0);
    stepsInEpisode_ = 0;
  }
  return episodes_.back();
}

void LoadRecorder::record(int layer, int rank, int slot, double tokens) {
  if (layer < 0 || layer >= layers_ || rank < 0 || rank >= ranks_ || slot < 0 || slot >= slots_)
    throw Error(ErrorCode::kInvalidArgument, "load record for layer " + std::to_string(layer) + ", rank " +
                                                 std::to_string(rank) + ", slot " + std::to_string(slot) +
                                                 " is outside " + std::to_string(layers_) + " layers x " +
                                                 std::to_string(ranks_) + " ranks x " + std::to_string(slots_) + " slots");
  if (!std::isfinite(tokens) || tokens < 0)
    throw Error(ErrorCode::kInvalidArgument, "load record for layer " + std::to_string(layer) + ", rank " +
                                                 std::to_string(rank) + ", slot " + std::to_string(slot) +
                                                 ": token count " + std::to_string(tokens) + " is not a non-negative number");
  current()[index(layer, rank, slot)] += tokens;
}

void LoadRecorder::recordRank(int layer, int rank, std::span<const double> perSlot) {
  if (static_cast<int>(perSlot.size()) != slots_)
    throw Error(ErrorCode::kInvalidArgument, "rank " + std::to_string(rank) + " reported " + std::to_string(perSlot.size()) +
                                                 " slot counts for layer " + std::to_string(layer) + ", expected " +
                                                 std::to_string(slots_));
  for (int s = 0; s < slots_; ++s) record(layer, rank, s, perSlot[s]);
}

void LoadRecorder::endStep() {
  current();  // a step with no records still counts
  ++stepsInEpisode_;
  ++steps_;
}

void LoadRecorder::merge(const LoadRecorder& o) {
  if (o.layers_ != layers_ || o.ranks_ != ranks_ || o.slots_ != slots_ || o.stepsPerEpisode_ != stepsPerEpisode_ ||
      o.episodes_.size() != episodes_.size())
    throw Error(ErrorCode::kInvalidArgument, "cannot merge load recorders of different shapes or step counts");
  for (size_t k = 0; k < episodes_.size(); ++k)
    for (size_t i = 0; i < episodes_[k].size(); ++i) episodes_[k][i] += o.episodes_[k][i];
}

void LoadRecorder::reset() {
  episodes_.clear();
  steps_ = stepsInEpisode_ = 0;
}

ExpertLoads LoadRecorder::logicalLoads(const Placement& p) const {
  if (static_cast<int>(p.layers.size()) != layers_ || p.ranks != ranks_ || p.slots != slots_)
    throw Error(ErrorCode::kInvalidArgument, "placement is " + std::to_string(p.layers.size()) + " layers x " +
                                                 std::to_string(p.ranks) + " x " + std::to_string(p.slots) +
                                                 ", the recorder " + std::to_string(layers_) + " x " +
                                                 std::to_string(ranks_) + " x " + std::to_string(slots_));
  ExpertLoads out;
  out.experts = p.experts;
  for (int l = 0; l < layers_; ++l) {
    LayerLoads ll;
    ll.total.assign(p.experts, 0.0);
    for (auto& ep : episodes_) {
      std::vector<double> logical(p.experts, 0.0);
      for (int r = 0; r < ranks_; ++r)
        for (int s = 0; s < slots_; ++s) logical[p.layers[l].at(r, s)] += ep[index(l, r, s)];
      for (int e = 0; e < p.experts; ++e) ll.total[e] += logical[e];
      ll.episodes.push_back(std::move(logical));
    }
    out.layers.push_back(std::move(ll));
  }
  return out;
}

}  // namespace eccl::eplb
