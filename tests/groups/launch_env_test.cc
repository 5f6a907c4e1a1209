// Reading torchrun's, Open MPI's and Slurm's environments (pure: the environment is a map).
#include <gtest/gtest.h>

#include <map>

#include "apps/common/local_ranks.h"
#include "base/error.h"
#include "groups/group/stateless_group.h"
#include "groups/launch/launch_bootstrap.h"
#include "groups/launch/launch_env.h"
#include "transport/socket/socket.h"

namespace eccl {
namespace {

LaunchEnv read(const std::map<std::string, std::string>& vars) {
  return readLaunchEnv([&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  });
}

std::string errorOf(const std::map<std::string, std::string>& vars) {
  try {
    read(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, Torchrun) {
  auto le = read({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.5"},
                  {"MASTER_PORT", "29500"}});
  EXPECT_EQ(le.launcher, "torchrun");
  EXPECT_EQ(le.rank, 3);
  EXPECT_EQ(le.size, 8);
  EXPECT_EQ(le.localRank, 1);
  EXPECT_EQ(le.localSize, 2);
  EXPECT_EQ(le.storeAddress(), "10.0.0.5:29501");  // MASTER_PORT belongs to torch's own store
  EXPECT_FALSE(le.servesStore);
  EXPECT_TRUE(read({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).servesStore);
}

TEST(LaunchEnv, OpenMpiOnOneHostNeedsNoMasterAddress) {
  auto le = read({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                  {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}, {"ECCL_STORE_PORT", "40000"}});
  EXPECT_EQ(le.launcher, "openmpi");
  EXPECT_EQ(le.storeAddress(), "127.0.0.1:40000");
  // Across hosts it must be told where rank 0 is.
  auto m = errorOf({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_NE(m.find("MASTER_ADDR"), std::string::npos) << m;
}

TEST(LaunchEnv, SlurmUsesTheStepsFirstNode) {
  auto le = read({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_TASKS_PER_NODE", "3(x2),2"},
                  {"SLURM_NODEID", "2"}, {"SLURM_STEP_NODELIST", "gpu[03-04,7],cpu1"}});
  EXPECT_EQ(le.launcher, "slurm");
  EXPECT_EQ(le.localSize, 2);  // node 2 of 3,3,2
  EXPECT_EQ(le.storeAddress(), "gpu03:29501");
  EXPECT_EQ(firstSlurmHost("node7"), "node7");
  EXPECT_EQ(firstSlurmHost("a,b"), "a");
  EXPECT_EQ(firstSlurmHost("node[1-2]-ib,x"), "node1-ib");
  EXPECT_NE(errorOf({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_TASKS_PER_NODE", "2"}, {"SLURM_NODEID", "1"},
                     {"MASTER_ADDR", "h"}}).find("SLURM_NODEID"), std::string::npos);
  EXPECT_THROW(firstSlurmHost("node[1-2"), Error);
}

TEST(LaunchEnv, AnExternalStoreIsServedByNobodyHere) {
  auto le = read({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"ECCL_STORE_ADDR", "[::1]:7000"}});
  EXPECT_EQ(le.storeHost, "::1");
  EXPECT_EQ(le.storePort, 7000);
  EXPECT_FALSE(le.servesStore);
  EXPECT_EQ(le.storeAddress(), "[::1]:7000");
}

TEST(LaunchEnv, MistakesNameTheVariable) {
  EXPECT_NE(errorOf({}).find("RANK"), std::string::npos);
  EXPECT_NE(errorOf({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("$RANK='x'"), std::string::npos);
  EXPECT_NE(errorOf({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("rank 2 is outside"), std::string::npos);
  EXPECT_NE(errorOf({{"OMPI_COMM_WORLD_RANK", "0"}}).find("OMPI_COMM_WORLD_SIZE"), std::string::npos);
  EXPECT_NE(errorOf({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"ECCL_STORE_ADDR", "nohost"}}).find("ECCL_STORE_ADDR"), std::string::npos);
  EXPECT_NE(errorOf({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "65535"}}).find("ECCL_STORE_PORT"),
            std::string::npos);
}

// Two processes started "by torchrun": rank 0 serves the store at MASTER_PORT + 1, both build a
// group over it and all-reduce.
TEST(LaunchBootstrap, TorchrunStyleRanksFindEachOther) {
  uint16_t storePort;
  {
    Fd probe = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
    storePort = SocketAddress::ofSocket(probe.get()).port();
  }
  auto exits = runLocalRanks(2, [&](int rank) {
    std::map<std::string, std::string> vars{{"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"},
                                            {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(storePort - 1)}};
    auto job = bootstrapFromEnv([&](const std::string& n) -> std::optional<std::string> {
      auto it = vars.find(n);
      return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
    if ((job.server != nullptr) != (rank == 0)) return 2;
    auto g = StatelessGroup::create(job.store, "launched", job.env.rank, job.env.size,
                                    {.comm = {.timeout = std::chrono::seconds(60)}});
    int64_t one = 1, sum = 0;
    g->comm().allReduce(&one, &sum, 1, DataType::kInt64, ReduceOp::kSum);
    g->comm().barrier();
    return sum == 2 ? 0 : 3;
  }, {std::chrono::seconds(120)});
  for (auto& e : exits) EXPECT_TRUE(e.ok()) << e.describe();
}

}  // namespace
}  // namespace eccl
