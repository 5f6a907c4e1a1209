// Rank, size and a connected store for a process a launcher started (torchrun, Open MPI's mpirun,
// Slurm's srun; see launch_env.h for the variables and where the store is):
//
//   auto job = eccl::bootstrapFromEnv();              // rank 0 serves the store, all connect
//   auto g = eccl::StatelessGroup::create(job.store, "world", job.env.rank, job.env.size);
//
// Keep `job` (its server, on rank 0) alive until every rank is done with the store.
#pragma once

#include <memory>

#include "groups/launch/launch_env.h"
#include "groups/store/store.h"
#include "groups/store/tcp_store_server.h"

namespace eccl {

struct LaunchedJob {
  LaunchEnv env;
  std::shared_ptr<TcpStoreServer> server;  // rank 0's, when it serves the store; else null
  std::shared_ptr<Store> store;            // connected; thread-safe, shared by any number of groups
};

// Throws Error(kInvalidArgument) naming a missing or malformed variable, or the Error of serving
// (naming the address and how to choose another port) or of connecting (naming the store).
LaunchedJob bootstrapFromEnv(const EnvLookup& env);
LaunchedJob bootstrapFromEnv();  // this process's environment

}  // namespace eccl
