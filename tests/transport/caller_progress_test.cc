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
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (asides.load() < 3 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    const bool stoodAside = asides.load() >= 3;
    p.endSpin(true);
    progress.join();  // (a progress thread still standing aside would hang here)
    EXPECT_TRUE(stoodAside) << "the progress thread did not stand aside for a polling waiter";
    EXPECT_FALSE(p.standAside());
  }
}

// A waiter giving up while another one still polls must not turn the progress thread's pauses
// into a busy loop (its give-up must count once, not end every later pause at once).
TEST(CallerProgress, AGiveUpWhileAnotherWaiterPollsLeavesThePausesAlone) {
  CallerProgress p([] { return false; });
  p.beginSpin();    // waiter A
  p.beginSpin();    // waiter B
  p.endSpin(true);  // A gives up; B polls on
  int asides = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(p.standAside());
    ++asides;
  }
  // Pauses of 0.5 ms make about 100 in 50 ms (fewer on a busy machine); a busy loop, millions.
  EXPECT_LE(asides, 1000);
  p.endSpin(false);
}

// Each wake-up of the progress thread costs a waiter's core a context switch: while waiters keep
// polling, the pauses double up to the longest (a pause's length is a lower bound: only a give-up
// ends one early); a give-up starts them short again.
TEST(CallerProgress, PausesGrowWhileWaitersKeepPolling) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::microseconds;
  CallerProgress p([] { return false; });
  p.setRanksOnHost(1);
  p.beginSpin();
  EXPECT_EQ(p.nextPause(), microseconds(0));
  const auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.standAside());  // 0.5, 1, 2 and 4 ms
  EXPECT_GE(Clock::now() - t0, microseconds(7500));
  EXPECT_EQ(p.nextPause(), CallerProgress::kLongestPause);
  ASSERT_TRUE(p.standAside());
  EXPECT_EQ(p.nextPause(), CallerProgress::kLongestPause) << "the pauses stop growing at the longest";

  p.beginSpin();  // a second waiter gives up while the first polls on
  p.endSpin(true);
  ASSERT_TRUE(p.standAside());
  EXPECT_EQ(p.nextPause(), microseconds(1000)) << "after a give-up, the pauses start from the first again";
  p.endSpin(false);
}

// Without a prompt take-over, a give-up is an end like any other (stood aside for a while).
TEST(CallerProgress, WithoutPromptTakeOverAGiveUpIsStoodAsideFor) {
  CallerProgress p([] { return false; });
  p.setPromptTakeOver(false);
  p.beginSpin();
  p.endSpin(true);
  EXPECT_TRUE(p.spinning(std::chrono::seconds(60)));
  EXPECT_TRUE(p.standAside());
  p.beginSpin();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.standAside());
  EXPECT_EQ(p.nextPause(), std::chrono::microseconds(0)) << "without a prompt take-over the pauses stay short";
  p.endSpin(false);
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
