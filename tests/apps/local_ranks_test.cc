// runLocalRanks, which every multi-process test stands on: exit codes, exceptions, the deadline,
// and the stacks printed of a rank that hangs.
#include "apps/common/local_ranks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "apps/common/print_stacks.h"

namespace eccl {
namespace {

// A frame with a name to look for in the printed stacks; says so on `ready` once inside.
[[gnu::noinline]] void stuckInLocalRanksTest(int ready) {
  if (ready >= 0) {
    char c = 1;
    [[maybe_unused]] auto n = ::write(ready, &c, 1);
  }
  for (;;) ::pause();
}

TEST(LocalRanks, ReportsExitCodesExceptionsAndRanksKilledAtTheDeadline) {
  auto exits = runLocalRanks(3, [](int rank) -> int {
    if (rank == 1) throw std::runtime_error("rank 1 throws");
    if (rank == 2) stuckInLocalRanksTest(-1);
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

TEST(LocalRanks, PrintsTheStacksOfARankThatHangsBeforeKillingIt) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = forkChild([&] { stuckInLocalRanksTest(ready[1]); return 0; });
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);  // inside the frame we look for
  ::close(ready[0]);
  ::close(ready[1]);
  testing::internal::CaptureStderr();
  RankExit e = reapChild(pid, std::chrono::milliseconds(0), true, std::chrono::seconds(120));
  const std::string err = testing::internal::GetCapturedStderr();
  if (err.find("gdb is not installed") != std::string::npos) GTEST_SKIP() << err;  // scripts/test.sh installs it
  EXPECT_TRUE(e.timedOut) << e.describe();
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_NE(err.find("== stacks of pid " + std::to_string(pid)), std::string::npos) << err;
  EXPECT_NE(err.find("stuckInLocalRanksTest"), std::string::npos) << err;
}

TEST(LocalRanks, ABadStacksSettingIsNamed) {
  const char* before = std::getenv("ECCL_STACKS_ON_TIMEOUT");
  const std::optional<std::string> saved = before ? std::optional<std::string>(before) : std::nullopt;
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
  if (saved) ::setenv("ECCL_STACKS_ON_TIMEOUT", saved->c_str(), 1);
}

}  // namespace
}  // namespace eccl
