// The demo's stand-in for a MoE model's router: per step and layer, how many tokens each rank
// sends to each logical expert. Popularity is Zipf-skewed and drifts (the hot experts change
// every `driftSteps` steps), identically on every rank; each rank adds its own noise.
#pragma once

#include <cstdint>
#include <vector>

namespace eccl::demo {

class SyntheticRouter {
 public:
  SyntheticRouter(int layers, int experts, double skew = 1.1, int driftSteps = 60, int tokensPerStep = 4096);
  // Tokens per logical expert that `rank` routes in `layer` at `step` (size experts).
  std::vector<double> tokens(int step, int layer, int rank) const;

 private:
  int experts_, drift_, tokens_;
  std::vector<std::vector<int>> order_;  // per layer: popularity order of the experts
  std::vector<double> weight_;           // Zipf weight of popularity position i
};

}  // namespace eccl::demo
