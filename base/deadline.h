// A point in (steady) time by which a blocking call must return.
#pragma once

#include <algorithm>
#include <chrono>

namespace eccl {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

class Deadline {
 public:
  static Deadline after(Millis timeout) { return Deadline(Clock::now() + timeout); }
  static Deadline never() { return Deadline(Clock::time_point::max()); }

  Clock::time_point at() const { return at_; }
  bool expired() const { return Clock::now() >= at_; }
  // Time left, never negative; saturates for never().
  Millis remaining() const {
    if (at_ == Clock::time_point::max()) return Millis::max();
    return std::max(Millis(0), std::chrono::duration_cast<Millis>(at_ - Clock::now()));
  }
  // Remaining time as a poll(2)/epoll_wait(2) timeout in ms (rounded up, capped to int).
  int pollTimeoutMs() const;

 private:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at_;
};

inline int Deadline::pollTimeoutMs() const {
  if (at_ == Clock::time_point::max()) return -1;
  auto left = std::chrono::ceil<Millis>(at_ - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

}  // namespace eccl
