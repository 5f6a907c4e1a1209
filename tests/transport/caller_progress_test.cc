#include "transport/caller_progress.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
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
  p.endSpin(false);
  EXPECT_FALSE(p.spinning(std::chrono::microseconds(0)));
  EXPECT_TRUE(p.spinning(std::chrono::seconds(60))) << "a waiter stopped just now";
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(p.spinning(std::chrono::microseconds(1000)));
}

// A waiter that stopped polling before its request finished sleeps until the progress thread
// finishes it: the progress thread must take over at once, not stand aside for the recent past.
TEST(CallerProgress, AWaiterThatGaveUpIsNotWaitedFor) {
  CallerProgress p([] { return false; });
  p.beginSpin();
  p.endSpin(true);
  EXPECT_FALSE(p.spinning(std::chrono::seconds(60)));
  EXPECT_FALSE(p.standAside());
  p.beginSpin();  // the next waiter, done by polling: likely back soon
  p.endSpin(false);
  EXPECT_TRUE(p.spinning(std::chrono::seconds(60)));
}

// The progress thread stands aside (pausing each time) while a waiter polls, and moves bytes
// itself again once the waiter gives up — also when the give-up comes during a pause.
TEST(CallerProgress, ProgressThreadStandsAsideUntilTheWaiterGivesUp) {
  for (int ranks : {1, 1 << 20}) {  // pauses of 0.5 ms, and of 2 ms (oversubscribed)
    CallerProgress p([] { return false; });
    p.setRanksOnHost(ranks);
    p.beginSpin();
    std::atomic<int> asides{0};
    std::thread progress([&] {
      while (p.standAside()) asides.fetch_add(1);
    });
    while (asides.load() < 3) std::this_thread::yield();
    p.endSpin(true);
    progress.join();  // (a progress thread still standing aside would hang here)
    EXPECT_GE(asides.load(), 3);
    EXPECT_FALSE(p.standAside());
  }
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
