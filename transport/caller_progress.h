// Lets a thread that waits on a request move its transport's bytes itself, instead of sleeping
// until the progress thread hands the completion over: on loopback a sleep/wake-up hand-off costs
// about 7 µs per hop and a context switch per message, which is most of a small message's
// latency and, with more ranks than cores, much of a large batch's time (like MPI's or NCCL's
// proxy-free polling, but bounded: a waiter gives up polling after $ECCL_SPIN_US without progress).
//
// Shared (shared_ptr) by a transport and every request it made, so a request may outlive its
// transport: detach() (from the transport's destructor) waits for a poll in progress and makes
// later polls no-ops. Thread-safe; only one thread polls at a time (others just spin).
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace eccl::transport {

class CallerProgress {
 public:
  // `pollOnce` moves whatever can move now without blocking and returns true if anything moved.
  explicit CallerProgress(std::function<bool()> pollOnce);

  // Polls once, unless another thread is polling or the transport is gone (then false).
  bool poll();
  // Called by waiters around their polling, so the progress thread can stand aside meanwhile.
  // `gaveUp`: the waiter stopped polling before its request finished and will sleep until the
  // progress thread finishes it; a progress thread standing aside is woken to do so at once.
  void beginSpin() { spinners_.fetch_add(1, std::memory_order_relaxed); }
  void endSpin(bool gaveUp);
  // A waiter is polling, or stopped within about `recent` (and did not give up): it will most
  // likely poll again soon. For the transport's progress thread only (it keeps the time; waiters
  // never read the clock).
  bool spinning(std::chrono::microseconds recent);
  // For the transport's progress thread, each time round its loop: while waiters poll (or just
  // did, within 1 ms), pauses instead of moving bytes and returns true; a waiter giving up ends
  // the pause at once. False: nobody else is polling, the caller moves the bytes itself.
  // The first pause is 0.5 ms, or 2 ms when oversubscribed; while waiters keep polling, each
  // next one doubles, up to kLongestPause. Every wake-up is a context switch on a core a waiter
  // is using (on the 2-core VM this was measured on, ~35 µs of that core's time each: 0.5 ms
  // pauses cost 2-rank shm all_gather 10-15% of its bandwidth). The price: once waiters stop
  // without giving up, operations nobody waits for move again within 1 ms + the pause at most.
  // (Without a prompt take-over the pause stays 0.5 ms.)
  static constexpr std::chrono::microseconds kLongestPause{4000};
  bool standAside();
  // The pause the next standAside() would start from (0: the first). Progress thread only.
  std::chrono::microseconds nextPause() const { return nextPause_; }
  // Off: waiters' give-ups are not told apart, and the pause stays 0.5 ms — the progress thread
  // takes over from a waiter that gave up only after the 1 ms window and its pause. For libfabric,
  // whose shm provider (1.17) can spin for good in a send to a peer killed inside its lock: a
  // prompt take-over retries such sends in the victim's last moments, before its sockets close
  // and eccl's check for a lost peer can see it (a peer-killing test under load hung in 4 of 32
  // runs with a prompt take-over, 1 of 52 without). Set before waiting starts. Default on.
  void setPromptTakeOver(bool on) { promptTakeOver_.store(on, std::memory_order_relaxed); }
  // After this returns, poll() never calls pollOnce again.
  void detach();
  // How long a waiter keeps polling after the last poll that moved something ($ECCL_SPIN_US,
  // default 2000 µs: longer than a scheduler time slice, so a peer that was descheduled does
  // not drop this rank back to sleeping; 0 disables caller polling).
  std::chrono::microseconds window() const { return window_; }
  // Oversubscribed: `ranks` busy ranks (or threads) of this host outnumber the cores the calling
  // thread may run on (its affinity mask, which threads it starts inherit). Then a waiter that
  // polls in vain gives its core up at once (the peer it waits for may need it), as Open MPI
  // does when oversubscribed.
  void setRanksOnHost(int ranks);
  bool oversubscribed() const { return oversubscribed_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::function<bool()> pollOnce_;
  std::atomic<int> spinners_{0};
  std::atomic<uint64_t> spinEnds_{0};  // spins ended so far
  std::atomic<uint64_t> giveUps_{0};   // of which the waiter gave up
  uint64_t seenGiveUps_ = 0;           // progress thread's: giveUps_ when it last looked
  std::mutex pauseMu_;                 // the progress thread's pause, and its wake-up
  std::condition_variable pauseCv_;
  bool pausing_ = false;               // under pauseMu_
  std::atomic<bool> promptTakeOver_{true};
  std::chrono::microseconds nextPause_{0};  // progress thread's: 0 = start again from the first
  uint64_t seenEnds_ = 0;              // progress thread's: spinEnds_ when it last looked
  int64_t lastSpinEnd_ = 0;            // progress thread's: when it first saw the last spin end, ns
  std::chrono::microseconds window_;
  std::atomic<bool> oversubscribed_{false};
};

}  // namespace eccl::transport
