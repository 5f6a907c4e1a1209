#include "transport/request_state.h"

#include <cstring>
#include <thread>

namespace eccl::transport {

std::string GroupIdentity::describe() const {
  return "group '" + group + "' epoch " + std::to_string(epoch) + " rank " + std::to_string(rank) + " of " +
         std::to_string(size);
}

std::string RequestLabel::str() const {
  const std::string& who = peer >= 0 && peer < static_cast<int>(names->peers.size()) ? names->peers[peer] : "rank " + std::to_string(peer);
  static constexpr const char* kVerb[] = {"send of ", "receive of ", "read of "};
  return names->group + ": " + kVerb[static_cast<int>(op)] + std::to_string(bytes) + " bytes " +
         (op == Op::kSend ? "to " : "from ") + who + (op == Op::kRead ? ", read " : ", tag ") + std::to_string(tag);
}

// Lock-free unless a waiter sleeps: the first finisher claims the request, writes the outcome,
// then publishes it through done_. A sleeper counts itself (under mu_) before it checks done_,
// and a finisher that sees it passes through mu_ before notifying, so no wake-up is lost.
bool RequestState::finish(std::optional<std::pair<ErrorCode, std::string>> err) {
  if (claimed_.exchange(true, std::memory_order_acq_rel)) {
    // Lost: the winner is a few instructions from publishing. Returning only once it has keeps
    // "after fail() or cancel() returns, the request is finished" true, as the lock used to.
    while (!done_.load(std::memory_order_acquire)) std::this_thread::yield();
    return false;
  }
  if (err) {
    failed_ = true;
    code_ = err->first;
    error_ = std::move(err->second);
  }
  done_.store(true, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  }
  return true;
}

void RequestState::complete() { finish(std::nullopt); }

void RequestState::fail(ErrorCode code, const std::string& message) { finish(std::pair{code, message}); }

std::optional<std::string> RequestState::error() const {
  // (Final once done_ is seen: see finish.)
  if (!done_.load(std::memory_order_acquire) || !failed_) return std::nullopt;
  return error_;
}

void RequestState::withdraw() {
  if (cancelFn_) {
    if (auto op = cancelOp_.lock()) cancelFn_(op);
  } else if (canceller_) {
    canceller_();
  }
}

void RequestState::cancel() {
  if (test()) return;
  withdraw();  // withdraws the request, then fails it
  fail(ErrorCode::kAborted, what() + " was cancelled");
}

// Polls the transport while polling moves bytes (up to the deadline), or without a transport
// to poll spins a little: most loopback completions arrive within tens of microseconds.
void RequestState::spin(Deadline deadline) {
  if (!progress_ || progress_->window().count() == 0) {
    for (auto until = Clock::now() + std::chrono::microseconds(30); !test() && Clock::now() < until;)
      std::this_thread::yield();
    return;
  }
  // (Ended however the loop is left: a spin that never ended would keep the progress thread
  // standing aside for good.)
  struct SpinScope {
    RequestState& r;
    explicit SpinScope(RequestState& req) : r(req) { r.progress_->beginSpin(); }
    ~SpinScope() { r.progress_->endSpin(!r.test()); }
  } scope(*this);
  unsigned idlePolls = 0;
  // The clock is read only once polling has been idle a while: a reply that comes within a few
  // polls (the common case on one host) costs no clock read at all.
  Clock::time_point lastMoved{};  // epoch: not read yet
  while (!test()) {
    if (progress_->poll()) {
      lastMoved = {};
      idlePolls = 0;
      continue;
    }
    if (progress_->oversubscribed()) std::this_thread::yield();
    if (++idlePolls % 8 != 0) continue;  // the clock costs a fifth of a poll: look at it less
    auto now = Clock::now();
    if (lastMoved == Clock::time_point{}) lastMoved = now;
    if (now - lastMoved >= progress_->window() || now >= deadline.at()) break;
    // Past the first microseconds (a reply on an idle core), give the core up between polls:
    // with more ranks than cores, the peer we wait for may need it.
    if (now - lastMoved > std::chrono::microseconds(20)) std::this_thread::yield();
  }
}

void RequestState::wait(Deadline deadline) {
  spin(deadline);
  if (!test()) {
    std::unique_lock lock(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    bool finished = true;
    if (deadline.at() == Clock::time_point::max()) cv_.wait(lock, [&] { return done_.load(); });
    else finished = cv_.wait_until(lock, deadline.at(), [&] { return done_.load(); });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    if (!finished) {
      lock.unlock();
      // Withdraw it (nothing touches its buffer afterwards), then record the timeout as its
      // error — unless it finished in between, in which case its own result stands. (A request
      // that finished is not withdrawn: its transport may be gone.)
      if (!test()) withdraw();
      finish(std::pair{ErrorCode::kTimeout, what() + " timed out"});
    }
  }
  // Finished now (see finish: even a losing one returns once the outcome is published), and
  // failed_, code_ and error_ were written before done_ was released.
  if (done_.load(std::memory_order_acquire) && failed_) throw Error(code_, error_);
}

namespace {

class CompletedRequest final : public Request {
 public:
  bool test() const override { return true; }
  void wait(Deadline) override {}
  void cancel() override {}
  std::optional<std::string> error() const override { return std::nullopt; }
};

}  // namespace

RequestPtr completedRequest() {
  static const RequestPtr done = std::make_shared<CompletedRequest>();
  return done;
}

void completeLocalMatch(RequestState& send, const void* src, size_t sendBytes, RequestState& recv, void* dst,
                        size_t recvBytes) {
  if (sendBytes != recvBytes) {
    send.fail(ErrorCode::kInvalidArgument, send.what() + ": the matching receive expects " + std::to_string(recvBytes) + " bytes");
    recv.fail(ErrorCode::kInvalidArgument, recv.what() + ": the matching send has " + std::to_string(sendBytes) + " bytes");
    return;
  }
  if (sendBytes) std::memcpy(dst, src, sendBytes);
  send.complete();
  recv.complete();
}

}  // namespace eccl::transport
