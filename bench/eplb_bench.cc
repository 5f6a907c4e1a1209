// Policy planning speed on one core, DeepSeek-V3 shape: 58 MoE layers x 256 experts on
// 64 ranks x 5 slots (64 redundant), Zipf-skewed aggregate loads, planned from the default layout.
#include <benchmark/benchmark.h>

#include "bench/eplb_workloads.h"
#include "eplb/policy.h"

namespace eccl::bench {
namespace {

void BM_PlanDeepSeekV3(benchmark::State& state, const char* policy) {
  auto loads = zipfDrifting(58, 256, 1, 1.0, 1e6, 0, 7);
  auto current = eplb::initialPlacement(58, 256, 64, 5);
  auto p = eplb::makePolicy(policy);
  for (auto _ : state) benchmark::DoNotOptimize(p->plan({&loads, &current, 64, 5}));
  state.SetLabel("58 layers x 256 experts, 64 ranks x 5 slots");
}
BENCHMARK_CAPTURE(BM_PlanDeepSeekV3, default, "default")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanDeepSeekV3, swift, "swift")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanDeepSeekV3, flash, "flash")->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace eccl::bench

BENCHMARK_MAIN();
