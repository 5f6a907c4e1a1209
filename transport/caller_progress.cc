#include "transport/caller_progress.h"

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

void CallerProgress::endSpin() {
  lastSpinEnd_.store(nowNs(), std::memory_order_relaxed);
  spinners_.fetch_sub(1, std::memory_order_relaxed);
}

bool CallerProgress::spinning(std::chrono::microseconds recent) const {
  if (spinners_.load(std::memory_order_relaxed) > 0) return true;
  return nowNs() - lastSpinEnd_.load(std::memory_order_relaxed) < std::chrono::nanoseconds(recent).count();
}

void CallerProgress::detach() {
  std::lock_guard lock(mu_);
  pollOnce_ = nullptr;
}

}  // namespace eccl::transport
