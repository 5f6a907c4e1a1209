#include "comm/work.h"

#include <condition_variable>
#include <mutex>

#include "base/error.h"

namespace eccl {

void WorkState::finish() {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
  }
  cv_.notify_all();
}

void WorkState::fail(const std::string& error, int code) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    error_ = error;
    code_ = code;
  }
  cv_.notify_all();
}

bool WorkState::test() {
  if (!requests_.empty()) {
    for (auto& r : requests_)
      if (!r->test()) return false;
    // The first failed request's error, with its code and named as wait() names it (waiting on
    // a finished request returns at once, throwing its error).
    std::optional<Error> first;
    for (auto& r : requests_)
      if (r->error()) {
        try {
          r->wait(Deadline::after(std::chrono::milliseconds(0)));
        } catch (const Error& e) {
          first = e;
          break;
        }
      }
    std::lock_guard lock(mu_);
    if (!done_) {
      done_ = true;
      if (first) {
        error_ = what_ + ": " + first->what();
        code_ = static_cast<int>(first->code());
      }
    }
    return true;
  }
  std::lock_guard lock(mu_);
  return done_;
}

void WorkState::wait(Deadline deadline) {
  if (!requests_.empty()) {
    // P2P: wait on every request; the first failure fails the Work, the others are cancelled.
    std::optional<Error> first;
    for (auto& r : requests_) {
      try {
        if (!first) r->wait(deadline);
        else r->cancel();
      } catch (const Error& e) {
        first = e;
      }
    }
    {
      std::lock_guard lock(mu_);
      if (!done_) {
        done_ = true;
        if (first) {
          error_ = what_ + ": " + first->what();
          code_ = static_cast<int>(first->code());
        }
      }
    }
  } else {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline.at(), [&] { return done_; }))
      throw Error(ErrorCode::kTimeout, what_ + " timed out: not finished by the caller's deadline");
  }
  std::lock_guard lock(mu_);
  if (error_) throw Error(static_cast<ErrorCode>(code_), *error_);
}

void WorkState::cancel() {
  if (requests_.empty()) throw Error(ErrorCode::kInvalidArgument, what_ + " is a collective: abort the communicator instead");
  bool finishedBefore = true;
  for (auto& r : requests_) finishedBefore = r->test() && finishedBefore;
  for (auto& r : requests_) r->cancel();
  if (finishedBefore) {
    test();
    return;
  }
  std::lock_guard lock(mu_);
  if (!done_) {
    done_ = true;
    error_ = what_ + " was cancelled";
    code_ = static_cast<int>(ErrorCode::kAborted);
  }
}

std::optional<std::string> WorkState::error() {
  test();
  std::lock_guard lock(mu_);
  return error_;
}

bool Work::test() const {
  if (request_) return request_->test();
  return !state_ || state_->test();
}

void Work::wait(std::optional<std::chrono::milliseconds> timeout) const {
  if (!state_ && !request_) return;
  // With the default timeout, the operation enforces it itself (and says which peer it was
  // waiting for); the grace lets that precise error arrive first.
  constexpr std::chrono::seconds kGrace{5};
  if (!request_) return state_->wait(Deadline::after(timeout ? *timeout : state_->defaultTimeout() + kGrace));
  try {
    request_->wait(Deadline::after(timeout ? *timeout : timeout_ + kGrace));
  } catch (const Error& e) {
    throw Error(e.code(), std::string(what_) + ": " + e.what());  // (as a WorkState names it)
  }
}

void Work::cancel() const {
  if (request_) request_->cancel();
  else if (state_) state_->cancel();
}

std::optional<std::string> Work::error() const {
  if (request_) {
    auto e = request_->error();
    return e ? std::optional<std::string>(std::string(what_) + ": " + *e) : std::nullopt;
  }
  return state_ ? state_->error() : std::nullopt;
}

}  // namespace eccl
