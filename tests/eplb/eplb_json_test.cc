#include <gtest/gtest.h>

#include <functional>

#include "eplb/eplb_json.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

void expectError(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " lacks " << w;
  }
}

TEST(EplbJson, ExpertMapRoundTripsAndReadsVllmAscendFixture) {
  // vllm-ascend's unit-test fixture: 1 layer, 2 devices, 8 experts in 10 slots.
  std::string fixture = R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 2,
    "device_list": [{"device_id": 0, "device_expert": [7, 2, 0, 3, 5]},
                    {"device_id": 1, "device_expert": [6, 1, 4, 7, 2]}]}]})";
  auto p = parseExpertMap(fixture, "fixture.json");
  EXPECT_EQ(p.experts, 8);
  EXPECT_EQ(p.ranks, 2);
  EXPECT_EQ(p.slots, 5);
  EXPECT_EQ(p.redundant(), 2);
  EXPECT_EQ(p.layers[0].expertMap(1, 8), (std::vector<int>{-1, 1, 4, -1, 2, -1, 0, 3}));
  auto again = parseExpertMap(expertMapJson(p), "again.json", 8);
  EXPECT_EQ(again.layers, p.layers);
}

TEST(EplbJson, LoadsWithTotalsOrEpisodes) {
  auto l = parseLoads(R"({"num_experts": 3, "layers": [
      {"layer_id": 1, "episodes": [[1, 2, 3], [4, 5, 6]]},
      {"layer_id": 0, "load": [7, 8, 9]}]})", "loads.json");
  ASSERT_EQ(l.layers.size(), 2u);
  EXPECT_EQ(l.layers[0].total, (std::vector<double>{7, 8, 9}));
  EXPECT_EQ(l.layers[1].total, (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(l.layers[1].episodes.size(), 2u);
  auto again = parseLoads(loadsJson(l), "again.json");
  EXPECT_EQ(again.layers[1].episodes, l.layers[1].episodes);
}

TEST(EplbJson, BadMapsNameTheFileAndField) {
  expectError([] { parseExpertMap("{", "m.json"); }, {"m.json", "malformed JSON"});
  expectError([] { parseExpertMap(R"({"layer_list": []})", "m.json"); }, {"m.json", "moe_layer_count"});
  expectError([] { parseExpertMap(R"({"moe_layer_count": 2, "layer_list": []})", "m.json"); }, {"layer_list", "moe_layer_count is 2"});
  expectError([] {
    parseExpertMap(R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 1,
      "device_list": [{"device_id": 0, "device_expert": [0, "x"]}]}]})", "m.json");
  }, {"layer_list[0].device_list[0].device_expert[1]", "integer"});
  expectError([] {  // an expert twice on one device
    parseExpertMap(R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 1,
      "device_list": [{"device_id": 0, "device_expert": [0, 0]}]}]})", "m.json", 1);
  }, {"m.json", "rank 0", "expert 0"});
  expectError([] {  // E > N*S when E comes from the loads
    parseExpertMap(R"({"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 1,
      "device_list": [{"device_id": 0, "device_expert": [0, 1]}]}]})", "m.json", 3);
  }, {"3 experts", "1 ranks x 2 slots"});
}

TEST(EplbJson, BadLoadsNameTheFileAndField) {
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "load": [1]}]})", "l.json"); },
              {"l.json", "layer 0", "1 loads, expected 2"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "load": [1, -3]}]})", "l.json"); },
              {"layer 0", "expert 1", "-3"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "load": [1, NaN]}]})", "l.json"); },
              {"l.json", "malformed JSON"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0}]})", "l.json"); },
              {"layers[0]", "\"load\" or \"episodes\""});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "episodes": [[1, 2], [3]]}]})", "l.json"); },
              {"episode 1", "1 loads, expected 2"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 1, "load": [1, 2]}]})", "l.json"); },
              {"layer 0 is missing"});
  expectError([] { readLoads("/nonexistent/loads.json"); }, {"/nonexistent/loads.json"});
  // F4, F11: numbers beyond double, loads whose sums would overflow, and no layers at all.
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "load": [1, 1e400]}]})", "l.json"); },
              {"l.json", "malformed JSON"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": [{"layer_id": 0, "load": [1e308, 1e308]}]})", "l.json"); },
              {"l.json", "layers[0].load[0]", "at most 1e15"});
  expectError([] { parseLoads(R"({"num_experts": 2, "layers": []})", "l.json"); }, {"l.json", "layers", "is empty"});
}

}  // namespace
}  // namespace eccl::eplb
