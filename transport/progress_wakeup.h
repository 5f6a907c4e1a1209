// How a transport's progress thread is woken from its sleep when work is posted: an eventfd it
// sleeps on beside its other descriptors, written only while the thread says it may be asleep
// (so posting costs one relaxed load, not a system call, while the thread is busy anyway).
// Thread-safe.
#pragma once

#include <atomic>

#include "transport/socket/fd.h"

namespace eccl::transport {

class ProgressWakeup {
 public:
  ProgressWakeup();  // throws Error naming the failed eventfd
  int fd() const { return fd_.get(); }
  // The progress thread, before it sleeps (true) and after (false).
  void mayBeAsleep(bool on) { idle_.store(on, std::memory_order_relaxed); }
  // Anyone who posted work: wakes the thread if it may be asleep.
  void wake() {
    if (idle_.load(std::memory_order_relaxed)) force();
  }
  // Wakes it whatever it said (the destructor's stop).
  void force();
  // The progress thread, when fd() was readable.
  void drain();

 private:
  Fd fd_;
  std::atomic<bool> idle_{false};
};

}  // namespace eccl::transport
