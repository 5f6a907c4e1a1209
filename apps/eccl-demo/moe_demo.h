// The main job: a synthetic MoE served by N local rank processes with EPLB, then an elastic
// scale-up to M ranks and a scale-down back to N while serving continues, and a final check of
// every expert's bytes. The store runs in a process of its own (a rank's crash cannot take it
// down); rank 0 prints one summary line per event.
//
// The fault scenario (killRank >= 0): rank `killRank` is SIGKILLed at step `killAtStep` while
// serving; the survivors recover (agree, rebuild the group, reload from a checkpoint file the
// experts only it held) and keep serving; then a replacement process joins (scale back up to N)
// and the final check covers every replica.
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
  int killRank = -1;                  // >= 0: the fault scenario (scaleTo is not used)
  int killAtStep = 0;                 // in the first serving phase
  std::string checkpoint;             // the checkpoint file the fault scenario writes; empty = a temporary one
};

// Returns 0 when every phase worked and every expert's checksum matched.
int runMoeDemo(const DemoOptions& options);

}  // namespace eccl::demo
