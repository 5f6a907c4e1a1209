// Who this process is in a job a launcher started, read from the launcher's environment: torchrun
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), Open MPI's mpirun
// (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE) and Slurm's srun (SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE with SLURM_NODEID, SLURM_STEP_NODELIST), checked in that
// order (mpirun inside a Slurm allocation sets both; its own variables are the right ones).
//
// Where the rendezvous store is: $ECCL_STORE_ADDR ("host:port": an eccl-store the launcher runs,
// which nobody here serves), else rank 0 serves one at $MASTER_ADDR — for Slurm without it, the
// step's first node; for a one-node mpirun, 127.0.0.1 — on $ECCL_STORE_PORT, else $MASTER_PORT
// + 1 (torch.distributed's own store, and torchrun's agent, already hold MASTER_PORT), else 29501.
// Pure: the environment comes in as a lookup function, so it is unit-tested without a process.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace eccl {

struct LaunchEnv {
  std::string launcher;  // "torchrun", "openmpi" or "slurm"
  int rank = 0, size = 1, localRank = 0, localSize = 1;
  std::string storeHost;
  uint16_t storePort = 0;
  bool servesStore = false;  // rank 0, and no ECCL_STORE_ADDR
  std::string storeAddress() const;  // "host:port" ([host]:port for IPv6)
};

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Throws Error(kInvalidArgument) naming the variable that is missing or malformed, or listing
// what was looked for when no launcher's variables are set.
LaunchEnv readLaunchEnv(const EnvLookup& env);
LaunchEnv readLaunchEnv();  // this process's environment (processEnv)
std::optional<std::string> processEnv(const std::string& name);  // getenv as an EnvLookup

// The first host of a Slurm host list: "node[03-05,9],gpu1" -> "node03". Throws
// Error(kInvalidArgument) for an empty or malformed list.
std::string firstSlurmHost(const std::string& hostList);

}  // namespace eccl
