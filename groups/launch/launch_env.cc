#include "groups/launch/launch_env.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/error.h"

namespace eccl {
namespace {

std::string required(const EnvLookup& env, const std::string& name, const std::string& launcher) {
  auto v = env(name);
  if (!v || v->empty()) throw Error(ErrorCode::kInvalidArgument, launcher + " launch: $" + name + " is not set");
  return *v;
}

int integer(const std::string& name, const std::string& value, int lowest) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < lowest || v > 1 << 24)
    throw Error(ErrorCode::kInvalidArgument, "$" + name + "='" + value + "' is not an integer >= " + std::to_string(lowest));
  return static_cast<int>(v);
}

int integerVar(const EnvLookup& env, const std::string& name, const std::string& launcher, int lowest) {
  return integer(name, required(env, name, launcher), lowest);
}

std::optional<int> optionalInt(const EnvLookup& env, const std::string& name, int lowest) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return integer(name, *v, lowest);
}

// Tasks on this node: Slurm lists tasks per node compressed, "2(x3),1" = 2,2,2,1 for nodes
// 0..3 of the step, and SLURM_NODEID says which node this is. (SLURM_NTASKS_PER_NODE is only set
// with --ntasks-per-node.)
std::optional<int> slurmLocalSize(const EnvLookup& env) {
  std::optional<std::string> list;
  const char* name = nullptr;
  for (const char* n : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"})
    if (auto v = env(n); v && !v->empty()) {
      list = v;
      name = n;
      break;
    }
  if (!list) return std::nullopt;
  const int node = optionalInt(env, "SLURM_NODEID", 0).value_or(0);
  int seen = 0;
  size_t at = 0;
  while (at <= list->size()) {
    const size_t comma = std::min(list->find(',', at), list->size());
    const std::string item = list->substr(at, comma - at);
    const size_t paren = item.find("(x");
    const int tasks = integer(name, item.substr(0, paren), 1);
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') throw Error(ErrorCode::kInvalidArgument, std::string("$") + name + "='" + *list + "' is malformed");
      repeat = integer(name, item.substr(paren + 2, item.size() - paren - 3), 1);
    }
    if (node < seen + repeat) return tasks;
    seen += repeat;
    at = comma + 1;
  }
  throw Error(ErrorCode::kInvalidArgument, std::string("$") + name + "='" + *list + "' lists " + std::to_string(seen) +
                                               " nodes, but $SLURM_NODEID is " + std::to_string(node));
}

uint16_t port(const std::string& name, const std::string& value) {
  const int p = integer(name, value, 1);
  if (p > 65535) throw Error(ErrorCode::kInvalidArgument, "$" + name + "='" + value + "' is not a port");
  return static_cast<uint16_t>(p);
}

void placeStore(const EnvLookup& env, LaunchEnv& le) {
  if (auto addr = env("ECCL_STORE_ADDR"); addr && !addr->empty()) {
    auto colon = addr->rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw Error(ErrorCode::kInvalidArgument, "$ECCL_STORE_ADDR='" + *addr + "' is not host:port");
    le.storeHost = addr->substr(0, colon);
    if (le.storeHost.size() > 2 && le.storeHost.front() == '[' && le.storeHost.back() == ']')
      le.storeHost = le.storeHost.substr(1, le.storeHost.size() - 2);
    le.storePort = port("ECCL_STORE_ADDR", addr->substr(colon + 1));
    le.servesStore = false;
    return;
  }
  if (auto host = env("MASTER_ADDR"); host && !host->empty()) {
    le.storeHost = *host;
  } else if (le.launcher == "slurm") {
    auto list = env("SLURM_STEP_NODELIST");
    if (!list || list->empty()) list = env("SLURM_JOB_NODELIST");
    if (!list || list->empty())
      throw Error(ErrorCode::kInvalidArgument, "slurm launch: neither $MASTER_ADDR, $ECCL_STORE_ADDR nor $SLURM_STEP_NODELIST is set");
    le.storeHost = firstSlurmHost(*list);
  } else if (le.localSize == le.size) {
    le.storeHost = "127.0.0.1";  // every rank on this machine
  } else {
    throw Error(ErrorCode::kInvalidArgument, le.launcher + " launch across " + std::to_string(le.size / std::max(le.localSize, 1)) +
                                                 "+ hosts: set $MASTER_ADDR (rank 0's host) or $ECCL_STORE_ADDR");
  }
  if (auto p = env("ECCL_STORE_PORT"); p && !p->empty()) {
    le.storePort = port("ECCL_STORE_PORT", *p);
  } else if (auto mp = env("MASTER_PORT"); mp && !mp->empty()) {
    const int master = integer("MASTER_PORT", *mp, 1);
    if (master >= 65535) throw Error(ErrorCode::kInvalidArgument, "$MASTER_PORT=" + *mp + ": no port above it for eccl's store; set $ECCL_STORE_PORT");
    le.storePort = static_cast<uint16_t>(master + 1);
  } else {
    le.storePort = 29501;
  }
  le.servesStore = le.rank == 0;
}

}  // namespace

std::string LaunchEnv::storeAddress() const {
  const bool v6 = storeHost.find(':') != std::string::npos;
  return (v6 ? "[" + storeHost + "]" : storeHost) + ":" + std::to_string(storePort);
}

std::string firstSlurmHost(const std::string& list) {
  // Hosts are separated by commas outside brackets; a bracket holds ranges of the suffix.
  if (list.empty()) throw Error(ErrorCode::kInvalidArgument, "empty Slurm host list");
  size_t i = 0;
  std::string prefix;
  while (i < list.size() && list[i] != ',' && list[i] != '[') prefix += list[i++];
  if (prefix.empty()) throw Error(ErrorCode::kInvalidArgument, "Slurm host list '" + list + "' starts with no host name");
  if (i == list.size() || list[i] == ',') return prefix;
  const size_t close = list.find(']', i);
  if (close == std::string::npos) throw Error(ErrorCode::kInvalidArgument, "Slurm host list '" + list + "' has an unclosed '['");
  std::string first = list.substr(i + 1, close - i - 1);
  first = first.substr(0, first.find_first_of(",-"));
  if (first.empty()) throw Error(ErrorCode::kInvalidArgument, "Slurm host list '" + list + "' has an empty range");
  const std::string suffix = list.substr(close + 1, list.find(',', close) - close - 1);  // node[1-2]-ib
  return prefix + first + suffix;  // zero padding is kept as written: node[03-05] -> node03
}

LaunchEnv readLaunchEnv(const EnvLookup& env) {
  LaunchEnv le;
  auto has = [&](const char* name) {
    auto v = env(name);
    return v && !v->empty();
  };
  if (has("RANK") && has("WORLD_SIZE")) {
    le.launcher = "torchrun";
    le.size = integerVar(env, "WORLD_SIZE", le.launcher, 1);
    le.rank = integerVar(env, "RANK", le.launcher, 0);
    le.localRank = optionalInt(env, "LOCAL_RANK", 0).value_or(le.rank);
    le.localSize = optionalInt(env, "LOCAL_WORLD_SIZE", 1).value_or(le.size);
  } else if (has("OMPI_COMM_WORLD_RANK")) {
    le.launcher = "openmpi";
    le.size = integerVar(env, "OMPI_COMM_WORLD_SIZE", le.launcher, 1);
    le.rank = integerVar(env, "OMPI_COMM_WORLD_RANK", le.launcher, 0);
    le.localRank = integerVar(env, "OMPI_COMM_WORLD_LOCAL_RANK", le.launcher, 0);
    le.localSize = integerVar(env, "OMPI_COMM_WORLD_LOCAL_SIZE", le.launcher, 1);
  } else if (has("SLURM_PROCID")) {
    le.launcher = "slurm";
    le.size = integerVar(env, "SLURM_NTASKS", le.launcher, 1);
    le.rank = integerVar(env, "SLURM_PROCID", le.launcher, 0);
    le.localRank = optionalInt(env, "SLURM_LOCALID", 0).value_or(0);
    le.localSize = slurmLocalSize(env).value_or(1);
  } else {
    throw Error(ErrorCode::kInvalidArgument,
                "no launcher environment: expected torchrun's RANK and WORLD_SIZE, Open MPI's OMPI_COMM_WORLD_RANK, "
                "or Slurm's SLURM_PROCID");
  }
  if (le.rank >= le.size)
    throw Error(ErrorCode::kInvalidArgument, le.launcher + " launch: rank " + std::to_string(le.rank) + " is outside a job of " +
                                                 std::to_string(le.size) + " ranks");
  placeStore(env, le);
  return le;
}

std::optional<std::string> processEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

LaunchEnv readLaunchEnv() { return readLaunchEnv(processEnv); }

}  // namespace eccl
