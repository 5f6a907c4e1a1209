#include "transport/liveness/heartbeat_monitor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/env.h"
#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"

namespace eccl::transport {

Millis resolveHeartbeatTimeout(const HeartbeatOptions& options) {
  const Millis t = options.timeout ? *options.timeout : envSeconds("ECCL_HEARTBEAT_TIMEOUT", std::chrono::seconds(5));
  if (t < Millis(0) || (t > Millis(0) && t < Millis(100)))
    throw Error(ErrorCode::kInvalidArgument, "heartbeat timeout (ECCL_HEARTBEAT_TIMEOUT) of " + std::to_string(t.count()) +
                                                 " ms: use 0 (off) or at least 0.1 s");
  return t;
}

HeartbeatMonitor::HeartbeatMonitor(GroupIdentity id, const std::string& host, Millis timeout)
    : id_(std::move(id)), timeout_(timeout), side_(id_, host) {
  stop_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stop_) throwSystemError(id_.describe() + ": heartbeat eventfd", errno);
}

HeartbeatMonitor::~HeartbeatMonitor() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
  std::lock_guard lock(mu_);
  if (table_) side_.sendBye();  // peers see a departure, not a failure
}

Millis HeartbeatMonitor::interval() const { return std::max(Millis(10), timeout_ / 4); }

void HeartbeatMonitor::connect(const std::vector<std::string>& addresses, Deadline deadline, FailureListener listener,
                               const GiveUpCheck& giveUp) {
  side_.connect(addresses, deadline, giveUp);
  listener_ = std::move(listener);
  {
    std::lock_guard lock(mu_);
    table_ = std::make_unique<LivenessTable>(id_.size, id_.rank, timeout_, Clock::now());
  }
  thread_ = std::thread([this] {
    nameThisThread("eccl-heartbeat");
    loop();
  });
}

std::map<int, std::string> HeartbeatMonitor::failures() const {
  std::lock_guard lock(mu_);
  return table_ ? table_->failures() : std::map<int, std::string>{};
}

void HeartbeatMonitor::loop() {
  const bool pinging = timeout_ > Millis(0);
  Clock::time_point nextPing = Clock::now();
  pollfd fds[2] = {{side_.waitFd(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
  for (;;) {
    int waitMs = -1;
    if (pinging)
      waitMs = static_cast<int>(std::max<long long>(0, std::chrono::ceil<Millis>(nextPing - Clock::now()).count()));
    ::poll(fds, 2, waitMs);
    if (fds[1].revents & POLLIN) return;
    std::vector<std::pair<int, std::string>> news;
    {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      for (auto& e : side_.poll()) {
        const std::string who = "rank " + std::to_string(e.peer);
        switch (e.kind) {
          case SideChannel::Event::kLeft: table_->left(e.peer); break;
          case SideChannel::Event::kLost:
            if (table_->fail(e.peer, who + " is gone: its heartbeat connection " + e.reason)) {
              news.emplace_back(e.peer, table_->failures().at(e.peer));
              if (!accused_) side_.sendSuspect(e.peer, table_->failures().at(e.peer));
            }
            break;
          case SideChannel::Event::kSuspects:
            if (table_->failed(e.peer)) break;  // a failed rank's word does not count
            if (e.accused == id_.rank) {
              // The others think this rank failed (it stalled): what it sees now — every peer
              // hanging up on it — is the consequence, not news to spread.
              accused_ = true;
              break;
            }
            if (table_->fail(e.accused, who + " reports: " + e.reason)) news.emplace_back(e.accused, table_->failures().at(e.accused));
            break;
          case SideChannel::Event::kAborted: break;
        }
      }
      for (int p = 0; p < id_.size; ++p)
        if (p != id_.rank) table_->heard(p, side_.lastHeard(p));
      for (int p : table_->silentPeers(now)) {
        const auto silent = std::chrono::duration_cast<Millis>(now - side_.lastHeard(p));
        table_->fail(p, "rank " + std::to_string(p) + " is unresponsive: no heartbeat for " + std::to_string(silent.count()) +
                            " ms (ECCL_HEARTBEAT_TIMEOUT " + std::to_string(timeout_.count()) + " ms)");
        news.emplace_back(p, table_->failures().at(p));
        if (!accused_) side_.sendSuspect(p, table_->failures().at(p));
      }
      // Failed peers get nothing more (a frozen one's socket would fill with pings); one that
      // wakes up finds the connection closed and learns, when it recovers, that it is out.
      for (auto& [rank, evidence] : news) side_.disconnect(rank);
      if (pinging && now >= nextPing) {
        side_.sendPing();
        nextPing = now + interval();
      }
    }
    for (auto& [rank, evidence] : news) {
      logger().warn("{}: {}", id_.describe(), evidence);
      if (listener_) listener_(rank, evidence);
    }
  }
}

}  // namespace eccl::transport
