// The OFI transport's progress: completion queues (both providers here need manual progress),
// the side channel (aborts, goodbyes, lost peers), failures and cancellation.
#include <poll.h>
#include <rdma/fi_endpoint.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/logging.h"
#include "transport/libfabric/ofi_transport_impl.h"

namespace eccl::transport::ofi {
namespace {

constexpr int kCompletionBatch = 16;
constexpr unsigned kPollsPerSideChannelLook = 4096;  // ~0.2 ms of polling: the syscall stays off the fast path

}  // namespace

// A waiting thread's turn (CallerProgress): never blocks on the lock.
bool OfiTransport::pollOnce() {
  std::unique_lock lock(mu_, std::try_to_lock);
  return lock && pollLocked(++polls_ % kPollsPerSideChannelLook == 0 || side_->holdsEvents());
}

// Under mu_: reads every completion queue (and the side channel); true if anything moved.
bool OfiTransport::pollLocked(bool sideChannel) {
  bool moved = false;
  for (Endpoint* ep : polled_) moved |= drainCompletions(*ep);
  moved |= drainBacklogs();
  if (sideChannel && connected_) handleSideChannel();
  return moved;
}

bool OfiTransport::drainCompletions(Endpoint& ep) {
  if (!ep.ep()) return false;
  fi_cq_tagged_entry entries[kCompletionBatch];
  bool moved = false;
  for (;;) {
    ssize_t n = fi_cq_read(ep.cq(), entries, kCompletionBatch);
    if (n > 0) {
      moved = true;
      for (ssize_t i = 0; i < n; ++i) onCompletion(*static_cast<Piece*>(entries[i].op_context), entries[i].len, 0, {});
      if (n < kCompletionBatch) return moved;
      continue;
    }
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(ep.cq(), &err, 0) != 1) return moved;
      moved = true;
      const char* text = fi_cq_strerror(ep.cq(), err.prov_errno, err.err_data, nullptr, 0);
      if (err.op_context)
        onCompletion(*static_cast<Piece*>(err.op_context), err.len, err.err, text ? text : fi_strerror(err.err));
      continue;
    }
    if (n != -FI_EAGAIN) logger().warn("{}: {}", id_.describe(), fiError("fi_cq_read", n));
    return moved;
  }
}

void OfiTransport::onCompletion(Piece& piece, size_t len, int err, const std::string& detail) {
  err = std::abs(err);  // providers differ in the sign they report
  Op& op = *piece.op;
  if (!op.error) {
    const bool incoming = op.kind == RequestLabel::Op::kRecv;  // (a read's completion carries no length)
    // (A cancel of ours names its reason before it withdraws the operation, so an FI_ECANCELED
    // met here is the provider's own — tcp;ofi_rxm's when a peer's connection goes: like any
    // other provider error, it most likely means a lost peer, named below when known.)
    if (err == FI_ECANCELED && op.cancelled) {
      op.error = {ErrorCode::kAborted, "cancelled"};
    } else if (err == FI_ETRUNC) {  // (providers' len and olen are unreliable here)
      op.error = {ErrorCode::kInvalidArgument, peerName(op.peer) + " sent more than the " + std::to_string(piece.bytes) +
                                                   " bytes this receive expects (size mismatch)"};
    } else if (err == 0 && incoming && len != piece.bytes) {
      op.error = {ErrorCode::kInvalidArgument,
                  peerName(op.peer) + " sent " + std::to_string(len) + " bytes for this message (size mismatch)"};
    } else if (auto lost = err != 0 ? lostPeerReason() : std::nullopt) {
      // A provider error while a peer is gone is most likely that loss (shm reports EIO on a
      // survivor's message): name the lost rank, as every other survivor will.
      op.error = {ErrorCode::kConnectionClosed, "failed: " + *lost};
    } else if (err != 0) {
      op.error = {op.kind == RequestLabel::Op::kRead ? ErrorCode::kRemote : ErrorCode::kConnectionClosed,
                  "libfabric reported " + std::string(fi_strerror(err)) + " (" + detail + ")" +
                      (op.kind == RequestLabel::Op::kRead ? " — was the region deregistered?" : "")};
    }
  }
  if (--op.outstanding == 0 && !op.inBacklog) finish(op);
}

// Under mu_: every posted piece has completed and no more will be posted; the request finishes
// (a cancelled one is failed by whoever cancelled it) and the Op is freed.
void OfiTransport::finish(Op& op) {
  if (!op.error && op.then) {
    auto next = std::move(op.then);
    if (next(op)) return;  // in flight again
  }
  if (!op.error) op.req->complete();
  else if (!op.cancelled) op.req->fail(op.error->first, op.req->what() + ": " + op.error->second);
  ops_.erase(&op);  // frees it
}

// Under mu_: stops posting `op`'s remaining pieces; true if it was waiting in its backlog.
static bool dropFromBacklog(std::deque<Op*>& backlog, Op* op) {
  auto it = std::find(backlog.begin(), backlog.end(), op);
  if (it == backlog.end()) return false;
  backlog.erase(it);
  return true;
}

// Reads the side channel without acting on it (safe inside completion handling).
std::optional<std::string> OfiTransport::lostPeerReason() {
  if (!connected_) return std::nullopt;
  return side_->peekLoss([this](int peer) { return peerName(peer); });
}

void OfiTransport::handleSideChannel() {
  for (auto& e : side_->takeEvents()) {
    if (auto b = SideChannel::breakFor(e, id_, peerName(e.peer))) {
      breakLocked(b->code, b->reason, b->relay);
      continue;
    }
    if (e.kind != SideChannel::Event::kLeft) continue;  // (suspicions are the heartbeat monitor's)
    // A goodbye. Its last messages may still be on their way on the data path: take them first.
    for (auto until = Clock::now() + std::chrono::milliseconds(50); Clock::now() < until;)
      if (!pollLocked(false)) break;
    peerLeft(e.peer);
  }
}

// Under mu_: asks the provider to give back a receive's or read's buffers (their completions,
// FI_ECANCELED or done, come through the queue). Sends cannot be withdrawn (see the header).
void OfiTransport::withdraw(Op& op) {
  if (op.kind == RequestLabel::Op::kSend || op.peer < 0 || !endpoints_[peers_[op.peer].endpoint]->ep()) return;
  fid_ep* ep = endpoints_[peers_[op.peer].endpoint]->ep();
  if (op.firstPosted) fi_cancel(&ep->fid, &op.first.ctx);
  for (auto& piece : op.more) fi_cancel(&ep->fid, &piece->ctx);
}

// Request::cancel's hook: runs under no lock; returns once the provider is done with the
// buffers (receives, reads) or after a short wait (sends).
void OfiTransport::cancelOp(const RequestState* req, bool keepCompletion) {
  std::unique_lock lock(mu_);
  // The request outlives this call (it holds the canceller), so no other Op can carry it.
  Op* raw = ops_.find(req);
  auto live = [&] { return ops_.find(req) != nullptr; };
  if (!raw) return;
  const bool send = raw->kind == RequestLabel::Op::kSend;
  raw->cancelled = true;
  if (!raw->error && !keepCompletion) raw->error = {ErrorCode::kAborted, "cancelled"};
  if (dropFromBacklog(peers_[raw->peer].backlog, raw)) {
    raw->inBacklog = false;
    if (raw->outstanding == 0) return finish(*raw);
  }
  withdraw(*raw);
  const auto until = Clock::now() + (send ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000));
  while (live() && Clock::now() < until) {
    if (!pollLocked(false)) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
  if (live() && !send) {
    // The provider kept the buffer: nothing on this transport can be trusted any more.
    breakLocked(ErrorCode::kSystem, id_.describe() + ": libfabric did not give back a cancelled " +
                                        std::string(raw->kind == RequestLabel::Op::kRead ? "read" : "receive") + " within 10 s", true);
  }
}

// A receive posted after its peer's goodbye: a message the peer sent before it left is in the
// provider already (the goodbye drained the data path), so the provider matches it as the
// receive is posted and completes it within a few polls. Nothing matched by then: nothing will,
// and the receive is withdrawn and fails naming the peer. (The caller of irecv waits for this,
// up to ~10 ms: only for a peer that is gone.)
void OfiTransport::settleDepartedReceive(const std::shared_ptr<RequestState>& req, int peer) {
  {
    std::unique_lock lock(mu_);
    // At least a few polls, however long the thread was descheduled.
    const auto until = Clock::now() + std::chrono::milliseconds(10);
    for (int polls = 0; !req->test() && (polls < 8 || Clock::now() < until); ++polls) {
      if (!pollLocked(false)) {
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      }
    }
  }
  if (req->test()) return;
  cancelOp(req.get(), true);  // (a message that matches meanwhile still completes it)
  req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
}

// A peer that said goodbye hung up: only what involves it fails.
void OfiTransport::peerLeft(int peer) {
  peers_[peer].left = true;
  const std::string why = peerName(peer) + " left the group (it destroyed its communicator)";
  failOps(peer, ErrorCode::kConnectionClosed, why);
  logger().debug("{}: {}", id_.describe(), why);
}

// Fails everything pending and everything later; with tellPeers, sends the reason to every peer.
void OfiTransport::breakLocked(ErrorCode code, const std::string& reason, bool tellPeers) {
  if (broken_) return;
  broken_ = reason;
  brokenCode_ = code;
  if (tellPeers && side_) side_->sendAbort(reason);
  notifyBroken(code, reason);
  const bool pending = pendingWork() || !selfMessages_.empty();
  failOps(-1, code, reason);
  selfMessages_.failAll(code, reason);
  if (pending || tellPeers) logger().warn("{}", reason);
  else logger().debug("{}", reason);
}

void OfiTransport::failOps(int peer, ErrorCode code, const std::string& why) {
  auto mine = [peer](const Op& op) { return peer < 0 || op.peer == peer; };
  // Nothing more is posted for them.
  std::vector<Op*> unposted;
  for (int r = 0; r < id_.size; ++r)
    if (peer < 0 || r == peer) {
      unposted.insert(unposted.end(), peers_[r].backlog.begin(), peers_[r].backlog.end());
      peers_[r].backlog.clear();
    }
  ops_.forEach([&](Op& op) {
    if (!mine(op)) return;
    op.inBacklog = false;
    if (!op.error) op.error = {code, "failed: " + why};
    withdraw(op);
  });
  for (Op* op : unposted)
    if (op->outstanding == 0) finish(*op);
  // Receives and reads give their buffers back before their requests fail: a caller that frees
  // a buffer on failure must not have it written afterwards.
  for (auto until = Clock::now() + std::chrono::seconds(1); Clock::now() < until;) {
    bool incoming = false;
    ops_.forEach([&](Op& op) { incoming |= mine(op) && op.kind != RequestLabel::Op::kSend; });
    if (!incoming) break;
    if (!pollLocked(false)) std::this_thread::yield();
  }
  // Sends (and anything the provider kept) fail now; a cancelled one is reported by its canceller.
  ops_.forEach([&](Op& op) {
    if (mine(op) && !op.cancelled) op.req->fail(op.error->first, op.req->what() + ": " + op.error->second);
  });
}

bool OfiTransport::pendingWork() const {
  bool pending = false;
  ops_.forEach([&](Op& op) { pending |= !op.req->test(); });
  return pending;
}

void OfiTransport::progressLoop() {
  auto lastMoved = Clock::now();
  pollfd fds[2] = {{wakeup_.fd(), POLLIN, 0}, {side_->waitFd(), POLLIN, 0}};
  while (!stop_.load()) {
    if (progress_->standAside()) continue;  // waiters are polling (see CallerProgress)
    bool moved, busy;
    {
      std::lock_guard lock(mu_);
      moved = pollLocked(true);
      busy = pendingWork();  // (an abandoned send to a departed peer is not work)
    }
    const auto now = Clock::now();
    if (moved) {
      lastMoved = now;
      continue;
    }
    if (busy && now - lastMoved < std::chrono::microseconds(200)) {
      std::this_thread::yield();
      continue;
    }
    // Nothing moves: sleep until the side channel speaks, an operation is posted, or a short
    // while passes (operations in flight) / a millisecond (idle; peers' connection set-up and
    // large sends need our progress too).
    wakeup_.mayBeAsleep(!busy);
    timespec ts{0, busy ? 50'000 : 1'000'000};
    ::ppoll(fds, 2, &ts, nullptr);
    wakeup_.mayBeAsleep(false);
    if (fds[0].revents & POLLIN) wakeup_.drain();
  }
}

}  // namespace eccl::transport::ofi
