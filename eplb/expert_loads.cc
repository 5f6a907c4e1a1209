#include "eplb/expert_loads.h"

#include <cmath>
#include <string>

#include "base/error.h"

namespace eccl::eplb {

std::vector<std::vector<double>> LayerLoads::windows() const {
  if (!episodes.empty()) return episodes;
  return {total};
}

namespace {

void checkVector(const std::vector<double>& v, int experts, const std::string& where) {
  if (static_cast<int>(v.size()) != experts)
    throw Error(ErrorCode::kInvalidArgument, where + " has " + std::to_string(v.size()) + " loads, expected " +
                                                 std::to_string(experts) + " (one per expert)");
  for (size_t e = 0; e < v.size(); ++e)
    if (!std::isfinite(v[e]) || v[e] < 0)
      throw Error(ErrorCode::kInvalidArgument, where + ", expert " + std::to_string(e) + ": load " +
                                                   std::to_string(v[e]) + " is not a finite non-negative number");
}

}  // namespace

void ExpertLoads::validate() {
  if (experts <= 0) throw Error(ErrorCode::kInvalidArgument, "num_experts must be positive, got " + std::to_string(experts));
  for (size_t l = 0; l < layers.size(); ++l) {
    auto& layer = layers[l];
    std::string where = "layer " + std::to_string(l);
    for (size_t k = 0; k < layer.episodes.size(); ++k)
      checkVector(layer.episodes[k], experts, where + ", episode " + std::to_string(k));
    if (layer.total.empty() && !layer.episodes.empty()) {
      layer.total.assign(experts, 0.0);
      for (auto& ep : layer.episodes)
        for (int e = 0; e < experts; ++e) layer.total[e] += ep[e];
    }
    checkVector(layer.total, experts, where);
  }
}

}  // namespace eccl::eplb
