// EPLB quality tables: for each policy, mean/max imbalance over layers (aggregate loads), mean
// per-episode imbalance (what each serving step sees), gap to the lower bound, replicas moved
// and planning time; "2 dom" rows spread every expert over two ranks where the redundant slots
// allow it (what that costs in balance). Workloads: vllm-ascend's own policy check and Zipf-skewed drifting loads.
//   eplb_quality [--quick]      (--quick: 4 layers instead of 58)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "bench/eplb_workloads.h"
#include "eplb/flash_policy.h"
#include "eplb/plan_summary.h"
#include "eplb/policy.h"

namespace {

using namespace eccl;

struct Contender {
  std::string name;
  std::function<std::unique_ptr<eplb::PlacementPolicy>()> make;
  int minDomains = 1;  // PolicyInput::minDomains: the balance a spread over failure domains costs
};

std::vector<Contender> contenders() {
  return {{"default", [] { return eplb::makePolicy("default"); }},
          {"swift", [] { return eplb::makePolicy("swift"); }},
          {"flash", [] { return eplb::makePolicy("flash"); }},
          {"flash z=0", [] { return std::make_unique<eplb::FlashPolicy>(eplb::FlashOptions{.z = 0}); }},
          {"flash z=.674", [] { return std::make_unique<eplb::FlashPolicy>(eplb::FlashOptions{.z = 0.674}); }},
          {"swift 2 dom", [] { return eplb::makePolicy("swift"); }, 2},
          {"flash 2 dom", [] { return eplb::makePolicy("flash"); }, 2}};
}

void header(const std::string& title) {
  std::printf("\n%s\n\n", title.c_str());
  std::printf("| policy       | mean imbalance | max imbalance | per-episode imbalance | gap to LB | moved/layer | re-planned | time (ms) |\n");
  std::printf("|--------------|---------------:|--------------:|----------------------:|----------:|------------:|-----------:|----------:|\n");
}

void print(const std::string& name, const eplb::PlanSummary& s, double ms) {
  std::printf("| %-12s | %14.4f | %13.4f | %21.4f | %8.2f%% | %11.1f | %5d/%-4d | %9.1f |\n", name.c_str(), s.meanImbalance,
              s.maxImbalance, s.episodeImbalance, 100 * s.meanGap, s.meanMoved, s.replanned, s.layers, ms);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int layers = quick ? 4 : 58;
  using Clock = std::chrono::steady_clock;

  auto w = bench::vllmAscendCheck(layers, 256, 32, 9, 100, 42);
  header("vllm-ascend policy check (seed 42): " + std::to_string(layers) +
         " layers x 32 ranks x 9 slots, 256 experts, load 999*u^10+1 per slot per step, 100 steps. "
         "Their bars: mean imbalance <= 1.08 (swift), <= 1.10 (FlashLB).");
  print("current", eplb::summarizePlacement(w.current, w.loads), 0);
  for (auto& c : contenders()) {
    auto t0 = Clock::now();
    auto r = c.make()->plan({&w.loads, &w.current, 32, 9, 1, c.minDomains});
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    print(c.name, eplb::summarizePlan(r, w.loads), ms);
  }

  for (auto [ranks, slots] : {std::pair{32, 9}, std::pair{64, 5}, std::pair{32, 17}}) {  // 32 x 17: room for 2 domains each
    header("Zipf(s=1) loads, hot set drifting, 256 experts, " + std::to_string(layers) + " layers x " +
           std::to_string(ranks) + " ranks x " + std::to_string(slots) +
           " slots: 5 EPLB cycles of 16 episodes, each planned from the previous placement (means over cycles).");
    for (auto& c : contenders()) {
      auto policy = c.make();
      eplb::Placement cur = eplb::initialPlacement(layers, 256, ranks, slots);
      eplb::PlanSummary mean;
      double ms = 0;
      const int cycles = 5;
      for (int cycle = 0; cycle < cycles; ++cycle) {
        auto loads = bench::zipfDrifting(layers, 256, 16, 1.0, 200000, 4 + 8 * cycle, 1000 + cycle);
        auto t0 = Clock::now();
        auto r = policy->plan({&loads, &cur, ranks, slots, 1, c.minDomains});
        ms += std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / cycles;
        mean.accumulate(eplb::summarizePlan(r, loads), 1.0 / cycles);
        cur = r.placement;
      }
      print(c.name, mean, ms);
    }
  }
  return 0;
}
