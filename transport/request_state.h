// The Request implementation transports share: a completion flag, an error, and waiting that
// first polls the transport from the waiting thread (see CallerProgress), or without one spins
// briefly, before sleeping (a loopback reply often lands within microseconds).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "transport/caller_progress.h"
#include "base/error.h"
#include "transport/transport.h"

namespace eccl::transport {

// Names a request in errors, e.g. "group 'ep' epoch 0 rank 1 of 4: receive of 4096 bytes from
// rank 3 (10.0.0.2:1234), tag 7" (a read names its read id as the tag). Kept as parts and formatted only when an error needs it:
// formatting it for every request cost about a microsecond, a tenth of a small message's latency.
struct RequestLabel {
  struct Names {  // one per transport, shared by its requests
    std::string group;               // GroupIdentity::describe()
    std::vector<std::string> peers;  // "rank 3 (10.0.0.2:1234)"
  };
  enum class Op : uint8_t { kSend, kRecv, kRead };
  std::shared_ptr<const Names> names;
  Op op = Op::kSend;
  size_t bytes = 0;
  int peer = 0;
  uint64_t tag = 0;
  std::string str() const;
};

class RequestState final : public Request {
 public:
  // `progress`, if given, is polled by wait() before it sleeps.
  explicit RequestState(RequestLabel label, std::shared_ptr<CallerProgress> progress = nullptr)
      : label_(std::move(label)), progress_(std::move(progress)) {}

  bool test() const override { return done_.load(std::memory_order_acquire); }
  void wait(Deadline deadline) override;
  void cancel() override;
  std::optional<std::string> error() const override;

  // Called by the transport (first call wins; later ones are ignored).
  void complete();
  void fail(ErrorCode code, const std::string& message);
  // The transport's hook that withdraws the request from its queues; runs under no lock of ours.
  void setCanceller(std::function<void()> c) { canceller_ = std::move(c); }
  // The common shape of that hook, "withdraw this operation if it still exists", without the
  // allocation a std::function holding a weak_ptr needs (it does not fit the small buffer):
  // `fn` gets the operation, kept alive for the call.
  using CancelFn = void (*)(const std::shared_ptr<void>& op);
  void setCanceller(std::weak_ptr<void> op, CancelFn fn) {
    cancelOp_ = std::move(op);
    cancelFn_ = fn;
  }
  std::string what() const { return label_.str(); }

 private:
  bool finish(std::optional<std::pair<ErrorCode, std::string>> err);
  void spin(Deadline deadline);
  void withdraw();  // runs the canceller, whichever way it was given

  RequestLabel label_;
  std::shared_ptr<CallerProgress> progress_;
  std::atomic<bool> claimed_{false};  // a finish has begun (the first wins)
  std::atomic<bool> done_{false};     // ... and its outcome below is written
  std::atomic<int> sleepers_{0};      // waiters blocked (or about to block) on cv_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ErrorCode code_ = ErrorCode::kAborted;
  std::string error_;
  bool failed_ = false;
  std::function<void()> canceller_;
  std::weak_ptr<void> cancelOp_;
  CancelFn cancelFn_ = nullptr;
};

// A transport's record of an operation (`Op`, with a `RequestState* req` member) and the request
// it hands out, made in one allocation: both pointers share one control block, so the record
// lives as long as either is held, and `op->req` (plain: it cannot outlive the record) needs no
// reference count of its own. A small receive then allocates once, not twice.
template <class Op>
struct Operation {
  std::shared_ptr<Op> op;
  std::shared_ptr<RequestState> req;
};
template <class Op>
Operation<Op> makeOperation(RequestLabel label, std::shared_ptr<CallerProgress> progress) {
  struct Block {
    Block(RequestLabel l, std::shared_ptr<CallerProgress> p) : state(std::move(l), std::move(p)) { op.req = &state; }
    RequestState state;
    Op op;
  };
  auto b = std::make_shared<Block>(std::move(label), std::move(progress));
  std::shared_ptr<Op> op(b, &b->op);
  return {std::move(op), std::shared_ptr<RequestState>(std::move(b), &b->state)};
}

// A request that finished successfully when it was posted (e.g. a small send copied into a
// ring): one shared immutable object, so such posts allocate nothing for their request.
RequestPtr completedRequest();

// A send and a receive of one rank to itself meet: copies the bytes and completes both, or fails
// both naming the sizes when they differ.
void completeLocalMatch(RequestState& send, const void* src, size_t sendBytes, RequestState& recv, void* dst,
                        size_t recvBytes);

}  // namespace eccl::transport
