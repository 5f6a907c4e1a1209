// The eccl-eplb tool end to end: plan, evaluate and report; bad input exits non-zero, names the
// problem, and leaves no output file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "eplb/eplb_json.h"
#include "tests/apps/spawn.h"

namespace eccl {
namespace {

using testing::readFile;
using testing::scratchPath;

struct ToolRun {
  int code;
  std::string out;
};

ToolRun eplbTool(std::vector<std::string> args) {
  std::string log = scratchPath("eplb-log");
  args.insert(args.begin(), ECCL_EPLB_BIN);
  RankExit e = reapChild(testing::spawnProgram(args, log), std::chrono::seconds(120));
  ToolRun r{e.exitCode, readFile(log)};
  ::unlink(log.c_str());
  return r;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

class EcclEplbCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(loads_) << R"({"num_experts": 8, "layers": [
        {"layer_id": 0, "load": [600, 560, 120, 120, 20, 10, 10, 10]},
        {"layer_id": 1, "episodes": [[10, 0, 5, 5, 1, 1, 1, 1], [0, 10, 5, 5, 1, 1, 1, 1]]}]})";
  }
  void TearDown() override {
    for (auto& f : {loads_, map_, next_, html_, bad_}) ::unlink(f.c_str());
  }
  std::string loads_ = scratchPath("loads.json"), map_ = scratchPath("map.json"), next_ = scratchPath("next.json"),
              html_ = scratchPath("report.html"), bad_ = scratchPath("bad.json");
};

TEST_F(EcclEplbCli, PlanEvaluateReport) {
  ToolRun r = eplbTool({"plan", "--loads", loads_, "--ranks", "8", "--slots", "2", "--out", map_});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("policy default"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.2800"), std::string::npos) << r.out;  // the seeds' default figure, layer 0
  auto first = eplb::readExpertMap(map_, 8);
  EXPECT_EQ(first.ranks, 8);

  r = eplbTool({"plan", "--loads", loads_, "--current", map_, "--policy", "flash", "--out", next_});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1.0851"), std::string::npos) << r.out;  // 590/3 over the mean 181.25
  EXPECT_NE(r.out.find("replicas moved"), std::string::npos) << r.out;

  r = eplbTool({"plan", "--loads", loads_, "--current", map_, "--policy", "swift", "--max-moves", "4", "--out", next_});
  ASSERT_EQ(r.code, 0) << r.out;
  auto swift = eplb::readExpertMap(next_, 8);
  for (size_t l = 0; l < 2; ++l) {
    int moved = 0;
    for (int k = 0; k < 16; ++k) moved += swift.layers[l].flat()[k] != first.layers[l].flat()[k];
    EXPECT_LE(moved, 4);
  }

  // 8 experts on 8 x 2 slots: room for every expert on two ranks, so no single rank's loss loses one.
  r = eplbTool({"plan", "--loads", loads_, "--ranks", "8", "--slots", "2", "--min-domains", "2", "--out", next_});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("every expert in >= 2 ranks where the redundant slots allow it; 0 expert-layer pairs"), std::string::npos) << r.out;
  for (auto& layer : eplb::readExpertMap(next_, 8).layers)
    for (int e = 0; e < 8; ++e) EXPECT_EQ(layer.replicaCounts(8)[e], 2) << "expert " << e;

  r = eplbTool({"evaluate", "--map", next_, "--loads", loads_});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("mean imbalance"), std::string::npos) << r.out;

  r = eplbTool({"report", "--map", next_, "--before", map_, "--loads", loads_, "--out", html_});
  ASSERT_EQ(r.code, 0) << r.out;
  std::string html = readFile(html_);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Before"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, static
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources
}

TEST_F(EcclEplbCli, BadInputFailsClearlyWithoutPartialOutput) {
  struct Case {
    std::string content;
    std::vector<std::string> extra;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"{not json", {}, "malformed JSON"},
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1, 2]}]})", {}, "2 loads, expected 8"},
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1, 2, 3, 4, 5, 6, 7, -8]}]})", {}, "expert 7"},
      {R"({"num_experts": 20, "layers": [{"layer_id": 0, "load": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]})", {}, "20 experts do not fit"},
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1, 2, 3, 4, 5, 6, 7, 8]}]})", {"--policy", "greedy"}, "unknown policy 'greedy'"},
      // F4, F11
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1, 2, 3, 4, 5, 6, 7, 1e400]}]})", {}, "malformed JSON"},
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1e308, 2, 3, 4, 5, 6, 7, 8]}]})", {}, "at most 1e15"},
      {R"({"num_experts": 8, "layers": []})", {}, "is empty"},
      {R"({"num_experts": 8, "layers": [{"layer_id": 0, "load": [1, 2, 3, 4, 5, 6, 7, 8]}]})", {"--policy", "flash", "--z", "nan"}, "finite"},
  };
  for (auto& c : cases) {
    std::ofstream(bad_) << c.content;
    std::vector<std::string> args{"plan", "--loads", bad_, "--ranks", "8", "--slots", "2", "--out", next_};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    ::unlink(next_.c_str());
    ToolRun r = eplbTool(args);
    EXPECT_NE(r.code, 0) << c.content;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << r.out;
    EXPECT_FALSE(exists(next_)) << "a failed run left " << next_;
  }
  // A broken map for evaluate and report.
  std::ofstream(bad_) << R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 8, "device_list": []}]})";
  ToolRun r = eplbTool({"evaluate", "--map", bad_, "--loads", loads_});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("device_list"), std::string::npos) << r.out;
  r = eplbTool({"report", "--map", bad_, "--loads", loads_, "--out", html_});
  EXPECT_NE(r.code, 0);
  EXPECT_FALSE(exists(html_));
  // Usage errors.
  EXPECT_NE(eplbTool({"plan", "--loads", loads_}).code, 0);
  EXPECT_NE(eplbTool({}).code, 0);
}

}  // namespace
}  // namespace eccl
