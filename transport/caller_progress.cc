#include "transport/caller_progress.h"

#include <sched.h>

#include <algorithm>

#include "base/env.h"

namespace eccl::transport {

CallerProgress::CallerProgress(std::function<bool()> pollOnce)
    : pollOnce_(std::move(pollOnce)), window_(envInt("ECCL_SPIN_US", 2000)) {}

bool CallerProgress::poll() {
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock || !pollOnce_) return false;
  return pollOnce_();
}

static int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void CallerProgress::endSpin(bool gaveUp) {
  gaveUp = gaveUp && promptTakeOver_.load(std::memory_order_relaxed);
  if (gaveUp) giveUps_.fetch_add(1, std::memory_order_relaxed);
  spinEnds_.fetch_add(1, std::memory_order_relaxed);
  spinners_.fetch_sub(1, std::memory_order_relaxed);
  if (gaveUp) {
    std::lock_guard lock(pauseMu_);
    if (pausing_) pauseCv_.notify_one();
  }
}

bool CallerProgress::spinning(std::chrono::microseconds recent) {
  // A waiter that gave up sleeps until its request is finished for it: its spin's end is not one
  // to wait out. Noted first, even while others poll, so standAside() pauses until the next one.
  bool gaveUp = false;
  if (const uint64_t g = giveUps_.load(std::memory_order_relaxed); g != seenGiveUps_) {
    seenGiveUps_ = g;
    seenEnds_ = spinEnds_.load(std::memory_order_relaxed);
    lastSpinEnd_ = 0;
    gaveUp = true;
  }
  if (spinners_.load(std::memory_order_relaxed) > 0) return true;
  if (recent.count() == 0 || gaveUp) return false;
  // A waiter's clock read costs a tenth of a small message's latency; the progress thread looks
  // often enough (every few hundred µs while waiters are about) to time the ends itself.
  const int64_t now = nowNs();
  if (const uint64_t ends = spinEnds_.load(std::memory_order_relaxed); ends != seenEnds_) {
    seenEnds_ = ends;
    lastSpinEnd_ = now;
  }
  return now - lastSpinEnd_ < std::chrono::nanoseconds(recent).count();
}

bool CallerProgress::standAside() {
  const uint64_t giveUpsBefore = seenGiveUps_;
  const bool aside = spinning(std::chrono::microseconds(1000));
  if (!aside || seenGiveUps_ != giveUpsBefore) nextPause_ = {};  // (a give-up starts them short again)
  if (!aside) return false;
  const bool prompt = promptTakeOver_.load(std::memory_order_relaxed);
  const auto first = oversubscribed() && prompt ? std::chrono::microseconds(2000) : std::chrono::microseconds(500);
  const auto pause = prompt ? std::max(first, nextPause_) : first;
  nextPause_ = prompt ? std::min(pause * 2, kLongestPause) : std::chrono::microseconds{};
  const uint64_t seen = seenGiveUps_;  // (spinning() has just noted every give-up so far)
  std::unique_lock lock(pauseMu_);
  pausing_ = true;
  // (A give-up that ends the pause is noted by the next spinning(), which starts them short again.)
  pauseCv_.wait_for(lock, pause, [&] { return giveUps_.load(std::memory_order_relaxed) != seen; });
  pausing_ = false;
  return true;
}

void CallerProgress::setRanksOnHost(int ranks) {
  cpu_set_t cpus;
  const int cores = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  oversubscribed_.store(ranks > cores, std::memory_order_relaxed);
}

void CallerProgress::detach() {
  std::lock_guard lock(mu_);
  pollOnce_ = nullptr;
}

}  // namespace eccl::transport
