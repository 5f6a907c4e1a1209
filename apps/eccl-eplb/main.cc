// eccl-eplb: plan, evaluate and visualise expert placements.
//   eccl-eplb plan --loads L.json (--ranks N --slots S | --current MAP.json) [--policy default|swift|flash]
//                  [--nodes K] [--min-domains D [--domain rank|node]] --out NEW.json
//   eccl-eplb evaluate --map MAP.json --loads L.json
//   eccl-eplb report --map MAP.json --loads L.json [--before OLD.json] --out report.html
// Exit code 0 on success, 1 on bad input (the message names the file and field), 2 on usage errors.
// Output files are written atomically: a failed run leaves no partial file.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>

#include "apps/eccl-eplb/html_report.h"
#include "apps/eccl-eplb/layer_table.h"
#include "eplb/eplb_json.h"
#include "eplb/flash_policy.h"
#include "eplb/policy.h"
#include "eplb/swift_policy.h"
#include "base/error.h"

namespace {

using namespace eccl;

struct PlanArgs {
  std::string loads, current, out, policy = "default";
  int ranks = 0, slots = 0, nodes = 1, minDomains = 1;
  std::string domain = "rank";
  double z = -1;
  int maxMoves = -1;
};

std::unique_ptr<eplb::PlacementPolicy> buildPolicy(const PlanArgs& a) {
  if (a.policy == "flash") return std::make_unique<eplb::FlashPolicy>(eplb::FlashOptions{.z = a.z});
  if (a.policy == "swift") return std::make_unique<eplb::SwiftPolicy>(eplb::SwiftOptions{.maxMoves = a.maxMoves});
  return eplb::makePolicy(a.policy);  // "default", or an error naming the unknown policy
}

int plan(const PlanArgs& a) {
  auto loads = eplb::readLoads(a.loads);
  std::optional<eplb::Placement> current;
  if (!a.current.empty()) current = eplb::readExpertMap(a.current, loads.experts);
  int ranks = current ? current->ranks : a.ranks;
  int slots = current ? current->slots : a.slots;
  if (current && ((a.ranks && a.ranks != ranks) || (a.slots && a.slots != slots)))
    throw Error(ErrorCode::kInvalidArgument, "--ranks/--slots disagree with --current " + a.current + " (" +
                                                 std::to_string(ranks) + " x " + std::to_string(slots) + ")");
  if (ranks <= 0 || slots <= 0) throw Error(ErrorCode::kInvalidArgument, "give --ranks and --slots, or --current");
  auto policy = buildPolicy(a);
  auto result = policy->plan({&loads, current ? &*current : nullptr, ranks, slots, a.nodes, a.minDomains, a.domain == "node"});
  if (a.minDomains > 1) {
    int below = 0;
    for (auto& st : result.layers) below += st.belowDomains;
    std::printf("failure domains: every expert in >= %d %ss where the redundant slots allow it; %d expert-layer pairs "
                "could not be spread that far\n", a.minDomains, a.domain.c_str(), below);
  }
  eplbtool::printLayerTable(stdout, result.placement, loads, &result.layers, current ? &*current : nullptr);
  auto after = eplb::summarizePlan(result, loads);
  std::optional<eplb::PlanSummary> before;
  if (current) before = eplb::summarizePlacement(*current, loads);
  eplbtool::printSummary(stdout, "policy " + policy->name(), after, before ? &*before : nullptr);
  eplb::writeFileAtomically(a.out, eplb::expertMapJson(result.placement));
  std::printf("wrote %s\n", a.out.c_str());
  return 0;
}

int evaluate(const std::string& mapPath, const std::string& loadsPath) {
  auto loads = eplb::readLoads(loadsPath);
  auto map = eplb::readExpertMap(mapPath, loads.experts);
  if (map.layers.size() != loads.layers.size())
    throw Error(ErrorCode::kInvalidArgument, mapPath + " has " + std::to_string(map.layers.size()) + " layers, " +
                                                 loadsPath + " has " + std::to_string(loads.layers.size()));
  eplbtool::printLayerTable(stdout, map, loads, nullptr, nullptr);
  eplbtool::printSummary(stdout, mapPath, eplb::summarizePlacement(map, loads), nullptr);
  return 0;
}

int report(const std::string& mapPath, const std::string& loadsPath, const std::string& beforePath, const std::string& out) {
  auto loads = eplb::readLoads(loadsPath);
  auto map = eplb::readExpertMap(mapPath, loads.experts);
  std::optional<eplb::Placement> before;
  if (!beforePath.empty()) before = eplb::readExpertMap(beforePath, loads.experts);
  for (const eplb::Placement* p : {&map, before ? &*before : nullptr}) {
    if (p && p->layers.size() != loads.layers.size())
      throw Error(ErrorCode::kInvalidArgument, "a map has " + std::to_string(p->layers.size()) + " layers, " + loadsPath +
                                                   " has " + std::to_string(loads.layers.size()));
  }
  if (before && (before->ranks != map.ranks || before->slots != map.slots))
    throw Error(ErrorCode::kInvalidArgument, "--before " + beforePath + " has a different shape than --map " + mapPath);
  eplb::writeFileAtomically(out, eplbtool::htmlReport(map, loads, before ? &*before : nullptr));
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eccl-eplb: plan, evaluate and visualise MoE expert placements"};
  app.require_subcommand(1);

  PlanArgs pa;
  auto* planCmd = app.add_subcommand("plan", "compute a new placement from loads");
  planCmd->add_option("--loads", pa.loads, "loads JSON")->required()->check(CLI::ExistingFile);
  planCmd->add_option("--current", pa.current, "current expert map JSON (enables migration-aware planning)")->check(CLI::ExistingFile);
  planCmd->add_option("--ranks", pa.ranks, "ranks (without --current)")->check(CLI::PositiveNumber);
  planCmd->add_option("--slots", pa.slots, "expert slots per rank (without --current)")->check(CLI::PositiveNumber);
  planCmd->add_option("--policy", pa.policy, "default, swift or flash")->capture_default_str();
  planCmd->add_option("--nodes", pa.nodes, "ranks form this many nodes; replicas are spread over nodes")->check(CLI::PositiveNumber)->capture_default_str();
  planCmd->add_option("--z", pa.z, "flash: weight of the std of rank load across episodes (default: 0.5 when the loads carry episodes, else 0)")
      ->check(CLI::NonNegativeNumber & CLI::Validator([](std::string& v) { return std::isfinite(std::stod(v)) ? "" : "must be a finite number"; }, "FINITE"))
      ->capture_default_str();
  planCmd->add_option("--min-domains", pa.minDomains, "each expert in at least this many failure domains where the "
                      "redundant slots allow it (a lost rank or node then loses no expert)")->check(CLI::PositiveNumber)->capture_default_str();
  planCmd->add_option("--domain", pa.domain, "failure domain: rank, or node (see --nodes)")
      ->check(CLI::IsMember({"rank", "node"}))->capture_default_str();
  planCmd->add_option("--max-moves", pa.maxMoves, "swift: replicas moved per layer at most (-1: N*S/4)")->capture_default_str();
  planCmd->add_option("--out", pa.out, "where to write the new expert map JSON")->required();

  std::string mapPath, loadsPath, beforePath, outPath;
  auto* evalCmd = app.add_subcommand("evaluate", "print the per-layer figures of a placement");
  evalCmd->add_option("--map", mapPath, "expert map JSON")->required()->check(CLI::ExistingFile);
  evalCmd->add_option("--loads", loadsPath, "loads JSON")->required()->check(CLI::ExistingFile);

  auto* reportCmd = app.add_subcommand("report", "write an HTML heat map of per-rank load");
  reportCmd->add_option("--map", mapPath, "expert map JSON")->required()->check(CLI::ExistingFile);
  reportCmd->add_option("--loads", loadsPath, "loads JSON")->required()->check(CLI::ExistingFile);
  reportCmd->add_option("--before", beforePath, "the map before the rebalance, shown beside it")->check(CLI::ExistingFile);
  reportCmd->add_option("--out", outPath, "HTML file to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*planCmd) return plan(pa);
    if (*evalCmd) return evaluate(mapPath, loadsPath);
    return report(mapPath, loadsPath, beforePath, outPath);
  } catch (const eccl::Error& e) {
    std::fprintf(stderr, "eccl-eplb: %s\n", e.what());
    return 1;
  }
}
