// The main job: a synthetic MoE served by N local rank processes with EPLB, then an elastic
// scale-up to M ranks and a scale-down back to N while serving continues, and a final check of
// every expert's bytes. Rank 0 embeds the store and prints one summary line per event.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace eccl::demo {

struct DemoOptions {
  int ranks = 4;                      // N: the serving ranks at the start
  int scaleTo = 6;                    // M: > N scales up then back down; < N scales down; = N neither
  int layers = 8;
  int experts = 32;
  int slots = 10;                     // per rank and layer
  size_t expertBytes = size_t(2) << 20;
  std::string policy = "swift";
  int steps = 120;                    // serving steps per serving phase
  int heatSteps = 0;                  // EPLB heat window H; 0 = steps / 3
  int algorithmSteps = 5;             // EPLB algorithm interval A
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

// Returns 0 when every phase worked and every expert's checksum matched.
int runMoeDemo(const DemoOptions& options);

}  // namespace eccl::demo
