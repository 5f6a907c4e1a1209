#include "eplb/eplb_json.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"

namespace eccl::eplb {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& name, const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, name + ": " + (path.empty() ? "" : path + ": ") + what);
}

json parse(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (1e400)
    bad(name, "", std::string("malformed JSON: ") + e.what());
  }
}

const json& field(const json& obj, const char* key, const std::string& name, const std::string& path) {
  if (!obj.is_object()) bad(name, path, "expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) bad(name, path, std::string("missing field \"") + key + "\"");
  return *it;
}

long long integer(const json& v, const std::string& name, const std::string& path) {
  if (!v.is_number_integer()) bad(name, path, "expected an integer");
  return v.get<long long>();
}

const json& array(const json& v, const std::string& name, const std::string& path) {
  if (!v.is_array()) bad(name, path, "expected an array");
  return v;
}

// Token counts: sums of thousands of them must stay finite and exact enough to compare.
constexpr double kMaxLoad = 1e15;

std::vector<double> loadValues(const json& v, const std::string& name, const std::string& path) {
  std::vector<double> out;
  for (size_t i = 0; i < array(v, name, path).size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!v[i].is_number()) bad(name, at, "expected a number");
    const double x = v[i].get<double>();
    if (!std::isfinite(x) || x > kMaxLoad) bad(name, at, "a load must be finite and at most 1e15, got " + v[i].dump());
    out.push_back(x);
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kInvalidArgument, "cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Placement parseExpertMap(const std::string& text, const std::string& name, std::optional<int> experts) {
  json doc = parse(text, name);
  long long L = integer(field(doc, "moe_layer_count", name, ""), name, "moe_layer_count");
  const json& list = array(field(doc, "layer_list", name, ""), name, "layer_list");
  if (L < 0 || static_cast<long long>(list.size()) != L)
    bad(name, "layer_list", "has " + std::to_string(list.size()) + " layers but moe_layer_count is " + std::to_string(L));
  std::map<long long, std::vector<std::vector<int>>> byId;
  int maxId = -1;
  for (size_t l = 0; l < list.size(); ++l) {
    std::string lp = "layer_list[" + std::to_string(l) + "]";
    long long id = integer(field(list[l], "layer_id", name, lp), name, lp + ".layer_id");
    long long D = integer(field(list[l], "device_count", name, lp), name, lp + ".device_count");
    const json& devs = array(field(list[l], "device_list", name, lp), name, lp + ".device_list");
    if (D <= 0 || static_cast<long long>(devs.size()) != D)
      bad(name, lp + ".device_list", "has " + std::to_string(devs.size()) + " devices but device_count is " + std::to_string(D));
    std::vector<std::vector<int>> rows(D);
    std::vector<char> seen(D, 0);
    for (size_t d = 0; d < devs.size(); ++d) {
      std::string dp = lp + ".device_list[" + std::to_string(d) + "]";
      long long dev = integer(field(devs[d], "device_id", name, dp), name, dp + ".device_id");
      if (dev < 0 || dev >= D || seen[dev]) bad(name, dp + ".device_id", std::to_string(dev) + " is out of range or repeated");
      seen[dev] = 1;
      const json& ex = array(field(devs[d], "device_expert", name, dp), name, dp + ".device_expert");
      for (size_t s = 0; s < ex.size(); ++s) {
        long long e = integer(ex[s], name, dp + ".device_expert[" + std::to_string(s) + "]");
        if (e < 0 || e > (1 << 24)) bad(name, dp + ".device_expert[" + std::to_string(s) + "]", "expert id " + std::to_string(e) + " is out of range");
        rows[dev].push_back(static_cast<int>(e));
        maxId = std::max(maxId, static_cast<int>(e));
      }
    }
    if (byId.count(id)) bad(name, lp + ".layer_id", "layer " + std::to_string(id) + " appears twice");
    byId[id] = std::move(rows);
  }
  Placement p;
  p.experts = experts.value_or(maxId + 1);
  for (auto& [id, rows] : byId) {
    if (id != static_cast<long long>(p.layers.size()))
      bad(name, "layer_list", "layer ids must be 0.." + std::to_string(L - 1) + "; layer " + std::to_string(p.layers.size()) + " is missing");
    for (size_t d = 1; d < rows.size(); ++d)
      if (rows[d].size() != rows[0].size())
        bad(name, "layer " + std::to_string(id), "device " + std::to_string(d) + " has " + std::to_string(rows[d].size()) +
                                                     " slots, device 0 has " + std::to_string(rows[0].size()));
    p.layers.push_back(LayerPlacement::fromRows(rows));
  }
  if (!p.layers.empty()) {
    p.ranks = p.layers[0].ranks();
    p.slots = p.layers[0].slots();
  }
  try {
    p.validate();
  } catch (const Error& e) {
    bad(name, "", e.what());
  }
  return p;
}

Placement readExpertMap(const std::string& path, std::optional<int> experts) {
  return parseExpertMap(readFile(path), path, experts);
}

std::string expertMapJson(const Placement& p) {
  nlohmann::ordered_json doc;  // keys in vllm-ascend's order
  doc["moe_layer_count"] = p.layers.size();
  auto list = nlohmann::ordered_json::array();
  for (size_t l = 0; l < p.layers.size(); ++l) {
    auto devs = nlohmann::ordered_json::array();
    for (int r = 0; r < p.ranks; ++r) devs.push_back({{"device_id", r}, {"device_expert", p.layers[l].row(r)}});
    list.push_back({{"layer_id", l}, {"device_count", p.ranks}, {"device_list", devs}});
  }
  doc["layer_list"] = list;
  return doc.dump(4) + "\n";
}

ExpertLoads parseLoads(const std::string& text, const std::string& name) {
  json doc = parse(text, name);
  ExpertLoads out;
  long long E = integer(field(doc, "num_experts", name, ""), name, "num_experts");
  if (E <= 0 || E > (1 << 24)) bad(name, "num_experts", "must be positive, got " + std::to_string(E));
  out.experts = static_cast<int>(E);
  const json& layers = array(field(doc, "layers", name, ""), name, "layers");
  if (layers.empty()) bad(name, "layers", "is empty: a load file needs at least one layer");
  std::map<long long, LayerLoads> byId;
  for (size_t l = 0; l < layers.size(); ++l) {
    std::string lp = "layers[" + std::to_string(l) + "]";
    long long id = integer(field(layers[l], "layer_id", name, lp), name, lp + ".layer_id");
    LayerLoads ll;
    bool hasLoad = layers[l].contains("load"), hasEpisodes = layers[l].contains("episodes");
    if (!hasLoad && !hasEpisodes) bad(name, lp, "needs \"load\" or \"episodes\"");
    if (hasLoad) ll.total = loadValues(layers[l]["load"], name, lp + ".load");
    if (hasEpisodes) {
      const json& eps = array(layers[l]["episodes"], name, lp + ".episodes");
      for (size_t k = 0; k < eps.size(); ++k)
        ll.episodes.push_back(loadValues(eps[k], name, lp + ".episodes[" + std::to_string(k) + "]"));
      if (ll.episodes.empty()) bad(name, lp + ".episodes", "is empty");
    }
    if (byId.count(id)) bad(name, lp + ".layer_id", "layer " + std::to_string(id) + " appears twice");
    byId[id] = std::move(ll);
  }
  for (auto& [id, ll] : byId) {
    if (id != static_cast<long long>(out.layers.size()))
      bad(name, "layers", "layer ids must be 0..n-1; layer " + std::to_string(out.layers.size()) + " is missing");
    out.layers.push_back(std::move(ll));
  }
  try {
    out.validate();
  } catch (const Error& e) {
    bad(name, "", e.what());
  }
  return out;
}

ExpertLoads readLoads(const std::string& path) { return parseLoads(readFile(path), path); }

std::string loadsJson(const ExpertLoads& loads) {
  nlohmann::ordered_json doc;
  doc["num_experts"] = loads.experts;
  auto layers = nlohmann::ordered_json::array();
  for (size_t l = 0; l < loads.layers.size(); ++l) {
    nlohmann::ordered_json layer = {{"layer_id", l}, {"load", loads.layers[l].total}};
    if (!loads.layers[l].episodes.empty()) layer["episodes"] = loads.layers[l].episodes;
    layers.push_back(layer);
  }
  doc["layers"] = layers;
  return doc.dump() + "\n";
}

void writeFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throwSystemError("cannot write '" + tmp + "'", errno);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throwSystemError("cannot write '" + tmp + "'", errno);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throwSystemError("cannot move the output into '" + path + "'", err);
  }
}

}  // namespace eccl::eplb
