#include "transport/caller_progress.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <thread>

namespace eccl::transport {
namespace {

TEST(CallerProgress, PollRunsThePollerUntilDetached) {
  int calls = 0;
  bool moved = true;
  CallerProgress p([&] { ++calls; return moved; });
  EXPECT_TRUE(p.poll());
  moved = false;
  EXPECT_FALSE(p.poll());
  EXPECT_EQ(calls, 2);
  p.detach();
  EXPECT_FALSE(p.poll());
  EXPECT_EQ(calls, 2) << "a detached progress must not call into its (gone) transport";
}

TEST(CallerProgress, SpinningCoversWaitersAndTheRecentPast) {
  CallerProgress p([] { return false; });
  EXPECT_FALSE(p.spinning(std::chrono::microseconds(0)));
  p.beginSpin();
  EXPECT_TRUE(p.spinning(std::chrono::microseconds(0)));
  p.endSpin();
  EXPECT_FALSE(p.spinning(std::chrono::microseconds(0)));
  EXPECT_TRUE(p.spinning(std::chrono::seconds(60))) << "a waiter stopped just now";
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(p.spinning(std::chrono::microseconds(1000)));
}

// Oversubscription is judged against the cores this thread may run on, not the machine's.
TEST(CallerProgress, OversubscribedWhenRanksOutnumberAllowedCores) {
  CallerProgress p([] { return false; });
  cpu_set_t all;
  ASSERT_EQ(::sched_getaffinity(0, sizeof all, &all), 0);
  const int cores = CPU_COUNT(&all);
  p.setRanksOnHost(cores);
  EXPECT_FALSE(p.oversubscribed());
  p.setRanksOnHost(cores + 1);
  EXPECT_TRUE(p.oversubscribed());

  std::thread([&] {  // a thread pinned to one core: two ranks are too many
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &all)) {
        CPU_SET(c, &one);
        break;
      }
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    p.setRanksOnHost(1);
    EXPECT_FALSE(p.oversubscribed());
    p.setRanksOnHost(2);
    EXPECT_TRUE(p.oversubscribed());
  }).join();
}

}  // namespace
}  // namespace eccl::transport
