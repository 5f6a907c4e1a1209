// Work: the handle of an asynchronous communicator operation (like torch's Work or an NCCL
// operation on a stream). Copyable; all copies refer to the same operation. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/deadline.h"
#include "transport/transport.h"

namespace eccl {

class WorkState;

class Work {
 public:
  Work() = default;
  explicit Work(std::shared_ptr<WorkState> s) : state_(std::move(s)) {}
  // An operation that is one transport request (a single isend, irecv or iread): the request is
  // the whole state, so nothing more is allocated. `what` ("send", "recv", "read": a string
  // literal) prefixes its errors, which keep the request's code (as a batch's do).
  Work(transport::RequestPtr request, const char* what, std::chrono::milliseconds defaultTimeout)
      : request_(std::move(request)), what_(what), timeout_(defaultTimeout) {}

  // True once the operation has finished (successfully or not). Never blocks.
  bool test() const;
  // Waits until the operation finishes; throws eccl::Error with the operation's error, or
  // kTimeout after `timeout` (default: the communicator's timeout, $ECCL_TIMEOUT).
  void wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt) const;
  std::optional<std::string> error() const;
  // P2P Works (isend/irecv/batchIsendIrecv): cancels every pending request; once it returns no
  // buffer of the operation is read or written, and the Work has failed with kAborted unless it
  // had already finished. A collective cannot be cancelled alone (abort the communicator): for
  // one this throws Error(kInvalidArgument).
  void cancel() const;
  bool valid() const { return state_ != nullptr || request_ != nullptr || finished_; }

  // A P2P operation that finished successfully as it was posted (e.g. a small send copied into
  // a peer's ring or a socket): no shared state to allocate, nothing to wait for or cancel.
  static Work finishedP2P() {
    Work w;
    w.finished_ = true;
    return w;
  }

 private:
  std::shared_ptr<WorkState> state_;
  transport::RequestPtr request_;  // instead of state_, for a single request
  const char* what_ = nullptr;
  std::chrono::milliseconds timeout_{0};
  bool finished_ = false;
};

// Shared completion state. Either finished by whoever runs the operation (finish/fail), or
// backed by transport requests (a batch of P2P operations), whose completion is the Work's
// completion; its error is the first failed request's, code included, named by what().
class WorkState {
 public:
  WorkState(std::string what, std::chrono::milliseconds defaultTimeout) : what_(std::move(what)), timeout_(defaultTimeout) {}
  void finish();
  void fail(const std::string& error, int code);
  void addRequests(std::vector<transport::RequestPtr> reqs) { requests_ = std::move(reqs); }

  bool test();
  void wait(Deadline deadline);
  void cancel();
  std::optional<std::string> error();
  std::chrono::milliseconds defaultTimeout() const { return timeout_; }
  const std::string& what() const { return what_; }

 private:
  std::string what_;
  std::chrono::milliseconds timeout_;
  std::vector<transport::RequestPtr> requests_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::optional<std::string> error_;
  int code_ = 0;
};

}  // namespace eccl
