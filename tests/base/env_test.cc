#include <gtest/gtest.h>
#include <stdlib.h>

#include "base/deadline.h"
#include "base/env.h"
#include "base/error.h"

namespace eccl {
namespace {

TEST(Env, SecondsParsesFractionsAndFallsBack) {
  ::unsetenv("ECCL_TEST_SECS");
  EXPECT_EQ(envSeconds("ECCL_TEST_SECS", Millis(7)), Millis(7));
  ::setenv("ECCL_TEST_SECS", "2.5", 1);
  EXPECT_EQ(envSeconds("ECCL_TEST_SECS", Millis(7)), Millis(2500));
  ::setenv("ECCL_TEST_SECS", "", 1);
  EXPECT_EQ(envSeconds("ECCL_TEST_SECS", Millis(7)), Millis(7));
  ::unsetenv("ECCL_TEST_SECS");
}

TEST(Env, OperationTimeoutIsGivenElseEcclTimeoutElse300Seconds) {
  ::unsetenv("ECCL_TIMEOUT");
  EXPECT_EQ(operationTimeout(std::nullopt), Millis(300000));
  ::setenv("ECCL_TIMEOUT", "1.5", 1);
  EXPECT_EQ(operationTimeout(std::nullopt), Millis(1500));
  EXPECT_EQ(operationTimeout(Millis(20)), Millis(20));
  ::unsetenv("ECCL_TIMEOUT");
}

TEST(Env, BadValuesNameTheVariable) {
  for (const char* bad : {"abc", "-1", "1s", "nan"}) {
    ::setenv("ECCL_TEST_SECS", bad, 1);
    try {
      envSeconds("ECCL_TEST_SECS", Millis(1));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("ECCL_TEST_SECS"), std::string::npos);
    }
  }
  ::setenv("ECCL_TEST_INT", "12z", 1);
  EXPECT_THROW(envInt("ECCL_TEST_INT", 0), Error);
  ::setenv("ECCL_TEST_INT", "12", 1);
  EXPECT_EQ(envInt("ECCL_TEST_INT", 0), 12);
  ::unsetenv("ECCL_TEST_SECS");
  ::unsetenv("ECCL_TEST_INT");
}

// F6: timeouts too long to represent mean "no deadline", never an overflow into an instant one.
TEST(Deadline, HugeTimeoutsSaturateInsteadOfOverflowing) {
  EXPECT_EQ(Deadline::after(Millis::max()).at(), Deadline::never().at());
  EXPECT_EQ(Deadline::after(std::chrono::duration_cast<Millis>(std::chrono::hours(24 * 365 * 1000))).pollTimeoutMs(), -1);
  EXPECT_TRUE(Deadline::after(Millis(-5)).expired());
  EXPECT_FALSE(Deadline::after(Millis(60000)).expired());
  for (const char* huge : {"10000000000", "1e300"}) {
    ::setenv("ECCL_TIMEOUT", huge, 1);
    const Deadline d = Deadline::after(operationTimeout(std::nullopt));
    EXPECT_FALSE(d.expired()) << huge;
    EXPECT_EQ(d.pollTimeoutMs(), -1) << huge;
    EXPECT_GT(d.remaining(), std::chrono::hours(24 * 365)) << huge;
  }
  ::unsetenv("ECCL_TIMEOUT");
}

}  // namespace
}  // namespace eccl
