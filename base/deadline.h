// A point in (steady) time by which a blocking call must return.
#pragma once

#include <algorithm>
#include <chrono>

namespace eccl {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

class Deadline {
 public:
  // Saturates: a timeout too long to represent (e.g. $ECCL_TIMEOUT=1e10) is never(), not an
  // overflow into the past; a negative one has already passed.
  static Deadline after(Millis timeout) {
    const auto now = Clock::now();
    if (timeout <= Millis(0)) return Deadline(now);
    if (timeout >= kNeverAfter) return never();  // (compared in ms: converting Millis::max() to ns would overflow)
    return Deadline(now + timeout);
  }
  // Timeouts from here on mean "no deadline" (about 30 years).
  static constexpr Millis kNeverAfter = std::chrono::duration_cast<Millis>(std::chrono::hours(24 * 365 * 30));
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
