// The EPLB C API: an updater over expert tensors the engine owns, elastic steps, and a planner.
#include "eplb/capi/eccl_eplb.h"

#include <nlohmann/json.hpp>

#include "eplb/eplb_json.h"
#include "eplb/eplb_updater.h"
#include "eplb/elastic_transition.h"
#include "eplb/expert_recovery.h"
#include "eplb/weight_source.h"
#include "eplb/load_recorder.h"
#include "eplb/policy.h"
#include "groups/capi/capi_internal.h"

using namespace eccl;
using namespace eccl::capi;
using namespace eccl::eplb;
using json = nlohmann::json;

namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); }

DataType dtypeNamed(const std::string& name, const std::string& where) {
  for (int i = 0; i < kDataTypeCount; ++i)
    if (name == dataTypeName(static_cast<DataType>(i))) return static_cast<DataType>(i);
  invalid(where + ": unknown dtype '" + name + "'");
}

// The configuration JSON (eccl_eplb.h), checked field by field.
struct EplbConfig {
  int layers = 0, experts = 0, slots = 0;
  std::vector<TensorSpec> tensors;
  UpdaterOptions updater;
  std::optional<std::string> initialMap;  // JSON text

  static EplbConfig parse(const std::string& text) {
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      invalid(std::string("EPLB config is not JSON: ") + e.what());
    }
    if (!j.is_object()) invalid("EPLB config must be a JSON object");
    EplbConfig c;
    auto integer = [&](const char* key, std::optional<int> dflt) {
      if (!j.contains(key)) {
        if (!dflt) invalid(std::string("EPLB config: \"") + key + "\" is missing");
        return *dflt;
      }
      if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0 || j[key].get<int64_t>() > (1 << 24))
        invalid(std::string("EPLB config: \"") + key + "\" must be a non-negative integer");
      return j[key].get<int>();
    };
    c.layers = integer("layers", std::nullopt);
    c.experts = integer("experts", std::nullopt);
    c.slots = integer("slots", std::nullopt);
    for (auto [key, v] : {std::pair{"layers", c.layers}, {"experts", c.experts}, {"slots", c.slots}})
      if (v <= 0) invalid(std::string("EPLB config: \"") + key + "\" must be positive, got " + std::to_string(v));
    if (!j.contains("tensors") || !j["tensors"].is_array() || j["tensors"].empty())
      invalid("EPLB config: \"tensors\" must be a non-empty list of {name, shape, dtype}");
    for (size_t i = 0; i < j["tensors"].size(); ++i) {
      const auto& t = j["tensors"][i];
      const std::string where = "EPLB config: tensors[" + std::to_string(i) + "]";
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("shape") || !t["shape"].is_array() ||
          !t.contains("dtype") || !t["dtype"].is_string())
        invalid(where + " must be {\"name\": str, \"shape\": [int...], \"dtype\": str}");
      TensorSpec spec{t["name"].get<std::string>(), {}, dtypeNamed(t["dtype"].get<std::string>(), where)};
      for (const auto& d : t["shape"]) {
        if (!d.is_number_integer()) invalid(where + ".shape holds a non-integer");
        spec.shape.push_back(d.get<int64_t>());
      }
      c.tensors.push_back(std::move(spec));
    }
    if (j.contains("policy")) {
      if (!j["policy"].is_string()) invalid("EPLB config: \"policy\" must be a string");
      c.updater.policy = j["policy"].get<std::string>();
    }
    c.updater.heatSteps = integer("heat_steps", c.updater.heatSteps);
    c.updater.algorithmSteps = integer("algorithm_steps", c.updater.algorithmSteps);
    c.updater.episodes = integer("episodes", c.updater.episodes);
    c.updater.nodes = integer("nodes", c.updater.nodes);
    c.updater.minDomains = integer("min_domains", c.updater.minDomains);
    if (j.contains("domain")) {
      if (!j["domain"].is_string() || (j["domain"] != "rank" && j["domain"] != "node"))
        invalid("EPLB config: \"domain\" must be \"rank\" or \"node\"");
      c.updater.domainsAreNodes = j["domain"] == "node";
    }
    if (j.contains("export_map_path") && !j["export_map_path"].is_null()) {
      if (!j["export_map_path"].is_string()) invalid("EPLB config: \"export_map_path\" must be a string");
      c.updater.exportMapPath = j["export_map_path"].get<std::string>();
    }
    if (j.contains("initial_map") && !j["initial_map"].is_null())
      c.initialMap = j["initial_map"].is_string() ? j["initial_map"].get<std::string>() : j["initial_map"].dump();
    makePolicy(c.updater.policy);  // names an unknown policy now, not at the first cycle
    return c;
  }

  Placement placement(int ranks) const {
    if (experts > int64_t(ranks) * slots)
      invalid("EPLB config: " + std::to_string(experts) + " experts do not fit " + std::to_string(ranks) + " ranks x " +
              std::to_string(slots) + " slots");
    Placement p = initialMap ? parseExpertMap(*initialMap, "initial_map", experts) : initialPlacement(layers, experts, ranks, slots);
    if (int(p.layers.size()) != layers || p.ranks != ranks || p.slots != slots || p.experts != experts)
      invalid("initial_map has " + std::to_string(p.layers.size()) + " layers x " + std::to_string(p.ranks) + " ranks x " +
              std::to_string(p.slots) + " slots (" + std::to_string(p.experts) + " experts); the config and group say " +
              std::to_string(layers) + " x " + std::to_string(ranks) + " x " + std::to_string(slots) + " (" +
              std::to_string(experts) + ")");
    return p;
  }

  std::unique_ptr<ExpertWeights> weights(void* const* bases, const uint64_t* strides) const {
    if (bases == nullptr || strides == nullptr) invalid("tensorBases and slotStrides must not be null");
    ExpertLayout layout(tensors);
    std::vector<ExternalTensor> ext;
    for (size_t i = 0; i < size_t(layers) * tensors.size(); ++i) ext.push_back({static_cast<uint8_t*>(bases[i]), strides[i]});
    return std::make_unique<ExpertWeights>(layout, layers, slots, std::move(ext));
  }
};

}  // namespace

struct ecclEplb {
  EplbConfig config;
  Communicator* comm = nullptr;  // the group the updater runs on (changes at an elastic switch)
  // What must outlive the updater (it refuses to be destroyed or switched meanwhile): the elastic
  // group whose communicator it runs on, or else the communicator handle.
  ecclElastic* owner = nullptr;
  ecclComm_t commHandle = nullptr;
  std::string broken;  // why it can no longer run (this rank left; a failed switch)
  std::unique_ptr<ExpertWeights> weights;
  std::unique_ptr<EplbUpdater> updater;
  std::unique_ptr<ElasticTransition> transition;
  std::vector<double> recent;  // this rank's tokens per (layer, slot) since the last elastic change
  std::vector<double> scratch;
  std::optional<CycleReport> pendingReport;  // taken from the updater, not yet copied out
  std::string recoveryReport;                 // the last ecclEplbRecover's, as JSON

  void dependOn(ecclComm_t c) {
    if (c->owner) {
      owner = c->owner;
      ++owner->eplbs;
    } else {
      commHandle = c;
      ++c->eplbs;
    }
  }
  void dependOn(ecclElastic* g) {
    owner = g;
    ++owner->eplbs;
  }
  ~ecclEplb() {
    transition.reset();
    updater.reset();
    if (owner) --owner->eplbs;
    if (commHandle) --commHandle->eplbs;
  }

  void startUpdater(Communicator& c, Placement placement) {
    updater.reset();
    comm = &c;
    updater = std::make_unique<EplbUpdater>(c, *weights, std::move(placement), config.updater);
    recent.assign(size_t(config.layers) * config.slots, 0.0);
  }

  // Loads of the recent steps, gathered over the active group (collective on it).
  ExpertLoads recentLoads() {
    const int N = comm->size(), L = config.layers, S = config.slots;
    std::vector<double> all(recent.size() * N);
    comm->allGather(recent.data(), all.data(), recent.size() * sizeof(double));
    LoadRecorder rec(L, N, S, 1);
    for (int r = 0; r < N; ++r)
      for (int l = 0; l < L; ++l) rec.recordRank(l, r, std::span<const double>(all.data() + (size_t(r) * L + l) * S, S));
    rec.endStep();
    ExpertLoads loads = rec.logicalLoads(updater->placement());
    // A group that has not served yet has no loads: treat every expert alike.
    for (auto& layer : loads.layers)
      for (double& x : layer.total) x += 1.0;
    return loads;
  }
};

namespace {

ecclEplb& eplbOf(ecclEplb_t e) {
  requireLive(e, "eplb");
  if (!e->updater) invalid("this eplb cannot run any more (" + e->broken + "); destroy it");
  return *e;
}

std::unique_ptr<ecclEplb> makeEplb(Communicator& comm, const char* configJson, void* const* bases, const uint64_t* strides) {
  auto e = std::make_unique<ecclEplb>();
  e->config = EplbConfig::parse(text(configJson, "configJson"));
  Placement p = e->config.placement(comm.size());
  e->weights = e->config.weights(bases, strides);
  for (int l = 0; l < e->config.layers; ++l) e->weights->load(l, layerMaps(p.layers[l], comm.rank(), p.experts), nullptr);
  e->startUpdater(comm, std::move(p));
  return e;
}

// (The type by reference: a C caller may pass any int, and loading it as the enum would be UB.)
void copyCounts(const void* counts, const ecclDataType_t& type, uint64_t n, std::vector<double>& out) {
  need(counts, n, "counts");
  out.resize(n);
  switch (typeOf(type)) {
    case DataType::kInt32: for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<const int32_t*>(counts)[i]; break;
    case DataType::kInt64: for (uint64_t i = 0; i < n; ++i) out[i] = double(static_cast<const int64_t*>(counts)[i]); break;
    case DataType::kFloat32: for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<const float*>(counts)[i]; break;
    case DataType::kFloat64: std::memcpy(out.data(), counts, n * sizeof(double)); break;
    default: invalid(std::string("token counts must be int32, int64, float32 or float64, not ") + dataTypeName(typeOf(type)));
  }
}

std::string reportJson(const CycleReport& r) {
  return json{{"cycle", r.cycle},
              {"imbalance_before", r.imbalanceBefore},
              {"imbalance_after", r.imbalanceAfter},
              {"layers_changed", r.layersChanged},
              {"slots_changed", r.slotsChanged},
              {"network_bytes", r.networkBytes},
              {"minimum_bytes", r.minimumBytes},
              {"bytes_sent", r.bytesSent},
              {"bytes_received", r.bytesReceived},
              {"transfer_seconds", r.transferSeconds},
              {"policy_seconds", r.policySeconds}}
      .dump();
}

// An engine's callback as a WeightSource: the expert's tensors at their offsets in the block.
class CallbackSource : public WeightSource {
 public:
  CallbackSource(ecclEplbWeightSourceFn fn, void* user, ExpertLayout layout) : fn_(fn), user_(user), layout_(std::move(layout)) {}
  void read(int layer, int expert, uint8_t* block) override {
    std::vector<void*> tensors;
    for (int t = 0; t < layout_.tensorCount(); ++t) tensors.push_back(block + layout_.offset(t));
    if (int rc = fn_(user_, layer, expert, tensors.data()); rc != 0)
      throw Error(ErrorCode::kRemote, "the weight source returned " + std::to_string(rc) + " for expert " + std::to_string(expert) +
                                          " of layer " + std::to_string(layer));
  }
  std::string describe() const override { return "the engine's weight source"; }

 private:
  ecclEplbWeightSourceFn fn_;
  void* user_;
  ExpertLayout layout_;
};

// The survivors' recent tokens per logical expert (collective on the new group): each rank maps
// its own slots' counts by the row its weights hold, then one all_reduce sums them. What the
// policy rebalances by after a recovery; experts nobody saw count 1.
ExpertLoads survivorLoads(Communicator& comm, const ExpertWeights& w, const std::vector<double>& recent, int experts) {
  const int L = w.layers(), S = w.slots();
  std::vector<double> totals(size_t(L) * experts, 0.0);
  for (int l = 0; l < L && !recent.empty(); ++l) {
    auto row = w.read(l).maps().row;
    for (int s = 0; s < S; ++s)
      if (row[s] >= 0) totals[size_t(l) * experts + row[s]] += recent[size_t(l) * S + s];
  }
  comm.allReduce(totals.data(), totals.data(), totals.size(), DataType::kFloat64, ReduceOp::kSum);
  ExpertLoads loads{experts, {}};
  for (int l = 0; l < L; ++l) {
    LayerLoads layer{std::vector<double>(totals.begin() + size_t(l) * experts, totals.begin() + size_t(l + 1) * experts), {}};
    for (double& x : layer.total) x += 1.0;
    loads.layers.push_back(std::move(layer));
  }
  return loads;
}

std::string recoveryJson(const RecoveryResult& r, const RecoveryPlan& plan, const RestoreReport& rep, double restoreSeconds) {
  json lost = json::array();
  for (auto& x : plan.lost) lost.push_back({{"layer", x.layer}, {"expert", x.expert}, {"rank", x.rank}, {"slot", x.slot}});
  return json{{"failed", r.failed},
              {"old_to_new", r.oldToNew},
              {"epoch", r.epoch},
              {"rounds", r.rounds},
              {"lost", lost},
              {"reloaded", rep.reloaded},
              {"reloaded_bytes", rep.bytes},
              {"source", rep.source},
              {"agree_seconds", r.agreeSeconds},
              {"build_seconds", r.buildSeconds},
              {"restore_seconds", restoreSeconds}}
      .dump();
}

// ecclEplbPlan's work: request JSON in, expert map JSON out.
std::string planFromRequest(const std::string& request) {
  try {
    const json j = json::parse(request);
    auto field = [&](const char* k) -> const json& {
      if (!j.is_object() || !j.contains(k)) invalid(std::string("plan request: \"") + k + "\" is missing");
      return j[k];
    };
    if (!field("ranks").is_number_integer() || !field("slots").is_number_integer())
      invalid("plan request: \"ranks\" and \"slots\" must be integers");
    const json& loadsField = field("loads");
    ExpertLoads loads = parseLoads(loadsField.is_string() ? loadsField.get<std::string>() : loadsField.dump(), "loads");
    std::optional<Placement> current;
    if (j.contains("current_map") && !j["current_map"].is_null()) {
      const json& m = j["current_map"];
      current = parseExpertMap(m.is_string() ? m.get<std::string>() : m.dump(), "current_map", loads.experts);
    }
    PolicyInput in{&loads, current ? &*current : nullptr, j["ranks"].get<int>(), j["slots"].get<int>(),
                   j.contains("nodes") ? j["nodes"].get<int>() : 1, j.contains("min_domains") ? j["min_domains"].get<int>() : 1,
                   j.contains("domain") && j["domain"] == "node"};
    const std::string policy = j.contains("policy") ? j["policy"].get<std::string>() : "swift";
    return expertMapJson(makePolicy(policy)->plan(in).placement);
  } catch (const json::exception& ex) {
    invalid(std::string("plan request: ") + ex.what());
  }
}

}  // namespace

extern "C" {

ecclResult_t ecclEplbCreate(ecclComm_t comm, const char* configJson, void* const* tensorBases, const uint64_t* slotStrides,
                            ecclEplb_t* eplb) {
  return guarded([&] {
    out(eplb, "eplb") = nullptr;
    auto e = makeEplb(commOf(comm), configJson, tensorBases, slotStrides);
    e->dependOn(comm);
    track(e.get(), "eplb");
    *eplb = e.release();
  });
}

ecclResult_t ecclEplbRecord(ecclEplb_t eplb, int32_t layer, const void* counts, ecclDataType_t dataType, uint64_t count) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    const int L = e.config.layers, S = e.config.slots;
    const uint64_t expected = layer < 0 ? uint64_t(L) * S : uint64_t(S);
    if (layer >= L || layer < -1) invalid("layer " + std::to_string(layer) + " is out of range (0.." + std::to_string(L - 1) + ", or -1 for all)");
    if (count != expected)
      invalid("counts holds " + std::to_string(count) + " values; " + (layer < 0 ? "all layers" : "one layer") + " needs " +
              std::to_string(expected) + " (" + (layer < 0 ? std::to_string(L) + " layers x " : std::string()) +
              std::to_string(S) + " slots)");
    copyCounts(counts, dataType, count, e.scratch);
    const int first = layer < 0 ? 0 : layer, last = layer < 0 ? L : layer + 1;
    for (int l = first; l < last; ++l) {
      std::span<const double> row(e.scratch.data() + size_t(l - first) * S, S);
      e.updater->record(l, row);
      for (int s = 0; s < S; ++s) e.recent[size_t(l) * S + s] += row[s];
    }
  });
}

// While an elastic transition moves experts, the updater stands still: a layer it committed
// meanwhile would change what the transition's plan reads from.
ecclResult_t ecclEplbBeforeForward(ecclEplb_t eplb) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    if (!e.transition) e.updater->beforeForward();
  });
}

ecclResult_t ecclEplbAfterForward(ecclEplb_t eplb, int32_t* changed) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    if (changed) *changed = 0;
    if (e.transition) return;
    const uint64_t before = e.updater->layersCommitted();
    e.updater->afterForward();
    if (changed) *changed = static_cast<int32_t>(e.updater->layersCommitted() - before);
  });
}

ecclResult_t ecclEplbGetMaps(ecclEplb_t eplb, int32_t layer, int32_t* expertMap, int32_t* log2phy) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    const int L = e.config.layers, E = e.config.experts;
    if (layer >= L || layer < -1) invalid("layer " + std::to_string(layer) + " is out of range (0.." + std::to_string(L - 1) + ", or -1 for all)");
    const int first = layer < 0 ? 0 : layer, last = layer < 0 ? L : layer + 1;
    for (int l = first; l < last; ++l) {
      auto view = e.weights->read(l);
      const size_t at = size_t(l - first) * E;
      if (expertMap) std::copy(view.maps().expertMap.begin(), view.maps().expertMap.end(), expertMap + at);
      if (log2phy) std::copy(view.maps().log2phy.begin(), view.maps().log2phy.end(), log2phy + at);
    }
  });
}

ecclResult_t ecclEplbGetPlacement(ecclEplb_t eplb, int32_t* experts, uint64_t count) {
  return guarded([&] {
    const Placement& p = eplbOf(eplb).updater->placement();
    const uint64_t need = uint64_t(p.layers.size()) * p.ranks * p.slots;
    if (count != need || experts == nullptr)
      invalid("the placement has " + std::to_string(need) + " entries (" + std::to_string(p.layers.size()) + " layers x " +
              std::to_string(p.ranks) + " ranks x " + std::to_string(p.slots) + " slots); the buffer holds " + std::to_string(count));
    for (size_t l = 0; l < p.layers.size(); ++l) std::copy(p.layers[l].flat().begin(), p.layers[l].flat().end(), experts + l * p.ranks * p.slots);
  });
}

ecclResult_t ecclEplbExportMap(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes) {
  return guarded([&] { copyOut(expertMapJson(eplbOf(eplb).updater->placement()), buf, capacity, bytes, "the expert map"); });
}

ecclResult_t ecclEplbApplyMap(ecclEplb_t eplb, const char* mapJson) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    Placement target = parseExpertMap(text(mapJson, "mapJson"), "mapJson", e.config.experts);
    const Placement& now = e.updater->placement();
    if (target.ranks != now.ranks || target.slots != now.slots || target.layers.size() != now.layers.size())
      invalid("mapJson has " + std::to_string(target.layers.size()) + " layers x " + std::to_string(target.ranks) + " ranks x " +
              std::to_string(target.slots) + " slots; the group holds " + std::to_string(now.layers.size()) + " x " +
              std::to_string(now.ranks) + " x " + std::to_string(now.slots));
    e.updater->applyPlacement(target);
  });
}

ecclResult_t ecclEplbTakeReport(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    if (!e.pendingReport) e.pendingReport = e.updater->takeReport();
    if (!e.pendingReport) {  // none: *bytes = 0 and an empty string where there is room for one
      if (bytes) *bytes = 0;
      if (buf && capacity > 0) buf[0] = '\0';
      return;
    }
    copyOut(reportJson(*e.pendingReport), buf, capacity, bytes, "the cycle report");  // too small: kept for the retry
    e.pendingReport.reset();
  });
}

ecclResult_t ecclEplbElasticStep(ecclEplb_t eplb, ecclElastic_t group, uint32_t newSize, const int32_t* oldToNew,
                                 uint32_t oldSize, int* done, int* left) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    auto& g = elasticOf(group);
    out(done, "done") = 0;
    out(left, "left") = 0;
    if (e.owner != &g) invalid("this eplb does not run on that elastic group");
    if (!e.transition) {
      if (e.updater->transferInFlight())
        invalid("a layer transfer is in flight: call ecclEplbElasticStep between steps (after ecclEplbAfterForward)");
      if (&g.group->comm() != e.comm) invalid("the elastic group's active communicator is not the one this eplb runs on");
      if (oldToNew == nullptr || oldSize != uint32_t(e.comm->size()))
        invalid("oldToNew must list every current rank's new rank (" + std::to_string(e.comm->size()) + " entries, got " +
                std::to_string(oldToNew ? oldSize : 0) + ")");
      ExpertLoads loads = e.recentLoads();
      e.transition = std::make_unique<ElasticTransition>(*g.group, *e.weights, e.updater->placement(), loads, int(newSize),
                                                         std::vector<int>(oldToNew, oldToNew + oldSize), e.config.updater.policy,
                                                         e.config.updater.nodes);
    }
    bool finished = false;
    try {
      finished = e.transition->step();
    } catch (const std::exception& ex) {
      // The transition is over. Before the switch the updater goes on serving the old group;
      // after it (a commit failed), the old group is gone and so is this eplb's footing.
      e.transition.reset();
      if (!g.group->member() || &g.group->comm() != e.comm) {
        std::lock_guard lock(g.mu);
        dropCommHandles(g);
        e.updater.reset();
        e.comm = nullptr;
        e.broken = std::string("the elastic switch failed after the group switched: ") + ex.what();
      }
      throw;
    }
    if (!finished) return;
    {
      std::lock_guard lock(g.mu);
      dropCommHandles(g);  // the epoch changed: borrowed communicator handles are stale
    }
    *done = 1;
    auto transition = std::move(e.transition);
    if (transition->left()) {
      *left = 1;
      e.updater.reset();
      e.comm = nullptr;
      e.broken = "this rank left its group";
      return;
    }
    e.startUpdater(g.group->comm(), transition->placement());
    e.updater->applyPlacement(transition->plan().target);
  });
}

ecclResult_t ecclEplbJoin(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t newRank, uint32_t newSize,
                          const char* configJson, void* const* tensorBases, const uint64_t* slotStrides, ecclElastic_t* group,
                          ecclEplb_t* eplb) {
  return guarded([&] {
    out(group, "group") = nullptr;
    out(eplb, "eplb") = nullptr;
    storeOf(store);
    auto e = std::make_unique<ecclEplb>();
    e->config = EplbConfig::parse(text(configJson, "configJson"));
    e->weights = e->config.weights(tensorBases, slotStrides);
    auto [g, plan] = ElasticTransition::join(store->store, text(groupName, "groupName"), int(newRank), int(newSize), *e->weights,
                                             {.epoch = epoch});
    e->startUpdater(g->comm(), plan.staged);
    e->updater->applyPlacement(plan.target);
    *group = newElasticHandle(std::move(g));
    e->dependOn(*group);
    track(e.get(), "eplb");
    *eplb = e.release();
  });
}

ecclResult_t ecclEplbWriteCheckpoint(const char* configJson, const char* path, ecclEplbWeightSourceFn source, void* user) {
  return guarded([&] {
    if (!source) invalid("source must not be null");
    EplbConfig c = EplbConfig::parse(text(configJson, "configJson"));
    ExpertLayout layout(c.tensors);
    CallbackSource from(source, user, layout);
    CheckpointFile::write(text(path, "path"), layout, c.layers, c.experts, [&](int l, int e, uint8_t* block) { from.read(l, e, block); });
  });
}

ecclResult_t ecclEplbRecover(ecclEplb_t eplb, ecclElastic_t group, const char* checkpointPath, ecclEplbWeightSourceFn source,
                             void* user, ecclRecoveryInfo* info) {
  return guarded([&] {
    requireLive(eplb, "eplb");
    auto& e = *eplb;
    auto& g = elasticOf(group);
    if (e.owner != &g) invalid("this eplb does not run on that elastic group");
    if (!e.updater && !e.transition) invalid("this eplb cannot run any more (" + e.broken + "); destroy it");
    if (!checkpointPath && !source) invalid("give a checkpointPath or a weight source");
    if (!g.group->member()) invalid("this rank is not in the elastic group any more (it left, or the others declared it failed)");
    const ExpertLayout layout = e.weights->layout();
    std::unique_ptr<WeightSource> from;
    if (checkpointPath) from = std::make_unique<CheckpointFile>(checkpointPath, layout);  // refused now if unusable
    else from = std::make_unique<CallbackSource>(source, user, layout);
    // Everything on the revoked group goes first: the transition, the updater and its loader.
    e.transition.reset();
    e.updater.reset();
    e.comm = nullptr;
    std::vector<double> recent = e.recent;
    RecoveryResult r;
    const int oldRank = g.group->rank();
    {
      std::lock_guard lock(g.mu);
      dropCommHandles(g);
      try {
        r = g.group->recover();
      } catch (const std::exception& ex) {
        e.broken = std::string("recovery failed: ") + ex.what();
        throw;
      }
    }
    Communicator& comm = g.group->comm();
    try {
      const auto t0 = std::chrono::steady_clock::now();
      ExpertLoads loads = survivorLoads(comm, *e.weights, recent, e.config.experts);
      RecoveryPlan plan = planRecovery(comm, *e.weights, e.config.experts, loads, e.config.updater.policy, e.config.updater.nodes);
      RestoreReport rep = restoreLostExperts(*e.weights, plan, comm.rank(), *from);
      e.startUpdater(comm, plan.restored);
      e.updater->applyPlacement(plan.target);
      e.recoveryReport = recoveryJson(r, plan, rep, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } catch (const std::exception& ex) {
      e.updater.reset();
      e.comm = nullptr;
      e.broken = std::string("restoring experts after the recovery failed: ") + ex.what();
      // The other ranks must not wait for this one in their next collectives.
      comm.revoke("rank " + std::to_string(comm.rank()) + " could not restore its experts: " + ex.what());
      throw;
    }
    if (info) *info = recoveryInfo(r, oldRank, comm.rank(), comm.size());
  });
}

ecclResult_t ecclEplbRecoveryReport(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes) {
  return guarded([&] {
    requireLive(eplb, "eplb");
    if (eplb->recoveryReport.empty()) invalid("this eplb has not recovered from anything");
    copyOut(eplb->recoveryReport, buf, capacity, bytes, "the recovery report");
  });
}

ecclResult_t ecclEplbGetInfo(ecclEplb_t eplb, ecclEplbInfo* info) {
  return guarded([&] {
    auto& e = eplbOf(eplb);
    out(info, "info") = {e.config.layers, e.config.experts, e.config.slots, e.comm->size(), e.comm->rank()};
  });
}

ecclResult_t ecclEplbDestroy(ecclEplb_t eplb) {
  return guarded([&] {
    requireLive(eplb, "eplb");
    untrack(eplb);
    delete eplb;
  });
}

ecclResult_t ecclEplbPlan(const char* requestJson, char* buf, size_t capacity, size_t* bytes) {
  return guarded([&] { copyOut(planFromRequest(text(requestJson, "requestJson")), buf, capacity, bytes, "the expert map"); });
}

}  // extern "C"
