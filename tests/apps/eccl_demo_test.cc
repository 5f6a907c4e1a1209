// The main job's rendezvous phase, run as the README runs it.
#include <gtest/gtest.h>

#include "tests/apps/spawn.h"

namespace eccl {
namespace {

TEST(EcclDemo, RanksInRandomOrderRendezvousAndExitZero) {
  for (int ranks : {1, 4, 16}) {
    std::string log = testing::scratchPath("demo");
    pid_t pid = testing::spawnProgram({ECCL_DEMO_BIN, "--ranks", std::to_string(ranks), "--seed", "7"}, log);
    RankExit e = reapChild(pid, std::chrono::seconds(120));
    std::string out = testing::readFile(log);
    EXPECT_EQ(e.exitCode, 0) << out;
    EXPECT_NE(out.find("rendezvous ok: " + std::to_string(ranks) + "/" + std::to_string(ranks)), std::string::npos) << out;
    // Every rank printed the full peer table.
    for (int r = 0; r < ranks; ++r) EXPECT_NE(out.find("rank " + std::to_string(r) + " (pid"), std::string::npos) << out;
    ::unlink(log.c_str());
  }
}

}  // namespace
}  // namespace eccl
