// eccl-demo: the main job run by scripts/demo.sh (see moe_demo.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "apps/eccl-demo/moe_demo.h"
#include "base/deadline.h"
#include "base/error.h"

int main(int argc, char** argv) {
  CLI::App app{"eccl demo: a synthetic MoE on local ranks with EPLB, elastic scale-up and scale-down"};
  eccl::demo::DemoOptions o;
  double timeoutSec = 120;
  app.add_option("--ranks", o.ranks, "serving ranks at the start")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--scale-to", o.scaleTo, "ranks to scale to (more: up, then back down; fewer: down)")
      ->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--layers", o.layers, "MoE layers")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--experts", o.experts, "logical experts per layer")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--slots", o.slots, "expert slots per rank and layer")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--expert-bytes", o.expertBytes, "bytes per expert (bf16 w13 + w2; rounded down to 1536-byte rows)")
      ->check(CLI::Range(size_t(1536), size_t(1) << 32))->capture_default_str();
  app.add_option("--policy", o.policy, "EPLB policy")->check(CLI::IsMember({"default", "swift", "flash"}))->capture_default_str();
  app.add_option("--steps", o.steps, "serving steps per serving phase")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--heat-steps", o.heatSteps, "EPLB heat window H (0: steps/3)")->check(CLI::Range(0, 1000000))->capture_default_str();
  app.add_option("--algorithm-steps", o.algorithmSteps, "EPLB algorithm interval A")->check(CLI::Range(0, 1000000))->capture_default_str();
  app.add_option("--timeout", timeoutSec, "seconds before a rank gives up on a peer")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--kill-rank", o.killRank, "fault scenario: SIGKILL this rank while serving (survivors recover, a replacement joins)")
      ->check(CLI::Range(0, 63));
  app.add_option("--kill-at-step", o.killAtStep, "the step (of the first serving phase) at which --kill-rank dies")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  app.add_option("--checkpoint", o.checkpoint, "fault scenario: where to write the checkpoint experts are reloaded from "
                 "(default: a temporary file, removed at the end)");
  CLI11_PARSE(app, argc, argv);
  // Saturate rather than overflow: --timeout 1e300 means "practically never".
  o.timeout = std::chrono::milliseconds(static_cast<long long>(
      std::min(timeoutSec * 1000, static_cast<double>(eccl::Deadline::kNeverAfter.count()))));
  try {
    return eccl::demo::runMoeDemo(o);
  } catch (const eccl::Error& e) {
    std::fprintf(stderr, "eccl-demo: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eccl-demo: %s\n", e.what());
    return 1;
  }
}
