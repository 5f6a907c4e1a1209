#include "apps/eccl-demo/synthetic_moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace eccl::demo {

SyntheticRouter::SyntheticRouter(int layers, int experts, double skew, int driftSteps, int tokensPerStep)
    : experts_(experts), drift_(std::max(1, driftSteps)), tokens_(tokensPerStep) {
  std::mt19937 rng(1234);
  for (int l = 0; l < layers; ++l) {
    std::vector<int> o(experts);
    std::iota(o.begin(), o.end(), 0);
    std::shuffle(o.begin(), o.end(), rng);
    order_.push_back(o);
  }
  double sum = 0;
  for (int i = 0; i < experts; ++i) sum += weight_.emplace_back(1.0 / std::pow(i + 1, skew));
  for (double& w : weight_) w /= sum;
}

std::vector<double> SyntheticRouter::tokens(int step, int layer, int rank) const {
  // Drift: every period the popularity order rotates by a quarter of the experts, so a new set
  // of experts becomes hot and the last placement goes stale.
  const int shift = (step / drift_) * std::max(1, experts_ / 4);
  std::mt19937 rng(uint32_t(step) * 7919u + uint32_t(layer) * 104729u + uint32_t(rank) * 15485863u);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  std::vector<double> out(experts_);
  for (int i = 0; i < experts_; ++i) {
    const int e = order_[layer][(i + shift) % experts_];
    out[e] = std::round(tokens_ * weight_[i] * noise(rng));
  }
  return out;
}

}  // namespace eccl::demo
