// runLocalRanks, which every multi-process test stands on: exit codes, exceptions, the deadline,
// and the stacks it prints of a rank that hangs.
#include "apps/common/local_ranks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace eccl {
namespace {

// A frame with a name to look for in the printed stacks.
[[gnu::noinline]] void stuckInLocalRanksTest() {
  for (;;) ::pause();
}

TEST(LocalRanks, ReportsExitCodesExceptionsAndRanksKilledAtTheDeadline) {
  auto exits = runLocalRanks(3, [](int rank) -> int {
    if (rank == 1) throw std::runtime_error("rank 1 throws");
    if (rank == 2) stuckInLocalRanksTest();
    return 0;
  }, {.timeout = std::chrono::milliseconds(1500), .stacksOnTimeout = false});
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_TRUE(exits[0].ok()) << exits[0].describe();
  EXPECT_EQ(exits[1].exitCode, 1) << exits[1].describe();
  EXPECT_FALSE(exits[1].timedOut);
  EXPECT_TRUE(exits[2].timedOut) << exits[2].describe();
  EXPECT_EQ(exits[2].signal, SIGKILL);
  EXPECT_NE(exits[2].describe().find("did not finish before the deadline"), std::string::npos);
}

// gdb is among the packages scripts/test.sh installs.
TEST(LocalRanks, PrintsTheStacksOfARankThatHangsBeforeKillingIt) {
  testing::internal::CaptureStderr();
  auto exits = runLocalRanks(1, [](int) -> int { stuckInLocalRanksTest(); return 0; },
                             {.timeout = std::chrono::milliseconds(1500), .stacksOnTimeout = true});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(exits[0].timedOut) << exits[0].describe();
  EXPECT_NE(err.find("== stacks of pid " + std::to_string(exits[0].pid)), std::string::npos) << err;
  EXPECT_NE(err.find("stuckInLocalRanksTest"), std::string::npos) << err;
}

TEST(LocalRanks, ABadStacksSettingIsNamed) {
  ::setenv("ECCL_STACKS_ON_TIMEOUT", "7", 1);
  try {
    stacksOnTimeoutFromEnv();
    ADD_FAILURE() << "accepted ECCL_STACKS_ON_TIMEOUT=7";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("ECCL_STACKS_ON_TIMEOUT"), std::string::npos) << e.what();
  }
  ::setenv("ECCL_STACKS_ON_TIMEOUT", "1", 1);
  EXPECT_TRUE(stacksOnTimeoutFromEnv());
  ::unsetenv("ECCL_STACKS_ON_TIMEOUT");
  EXPECT_FALSE(stacksOnTimeoutFromEnv());
}

}  // namespace
}  // namespace eccl
