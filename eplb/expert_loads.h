// Token counts per logical expert, per MoE layer: one aggregate window, or a sequence of
// per-step windows ("episodes") so a policy can see fluctuation and correlation.
#pragma once

#include <vector>

namespace eccl::eplb {

struct LayerLoads {
  std::vector<double> total;                  // size E: the aggregate (sum of episodes if given)
  std::vector<std::vector<double>> episodes;  // optional: each of size E

  // The episodes a policy should optimise over: `episodes`, or the aggregate as the only one.
  std::vector<std::vector<double>> windows() const;
};

struct ExpertLoads {
  int experts = 0;
  std::vector<LayerLoads> layers;

  // Builds `total` from episodes where only episodes were given. Throws Error(kInvalidArgument)
  // naming the layer, episode and expert for a wrong length or a negative/NaN/infinite load.
  void validate();
};

}  // namespace eccl::eplb
