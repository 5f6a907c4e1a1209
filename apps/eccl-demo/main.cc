// eccl-demo: the main job run by scripts/demo.sh.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/eccl-demo/rendezvous_demo.h"
#include "transport/error.h"

int main(int argc, char** argv) {
  CLI::App app{"eccl demo: local ranks rendezvous through an embedded store"};
  eccl::demo::RendezvousOptions opts;
  double timeoutSec = 60;
  app.add_option("--ranks", opts.ranks, "number of local rank processes")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--timeout", timeoutSec, "seconds before a rank gives up")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", opts.seed, "seed for the start order and delays")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  opts.timeout = std::chrono::milliseconds(static_cast<long long>(timeoutSec * 1000));
  try {
    return eccl::demo::runRendezvousDemo(opts);
  } catch (const eccl::Error& e) {
    std::fprintf(stderr, "eccl-demo: %s\n", e.what());
    return 1;
  }
}
