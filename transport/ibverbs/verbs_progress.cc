// The verbs transport's progress: the completion queue, the side channel (aborts, goodbyes,
// lost peers), device events, failures and cancellation.
#include <sys/epoll.h>

#include <algorithm>

#include "base/logging.h"
#include "transport/ibverbs/verbs_transport_impl.h"

namespace eccl::transport::verbs {
namespace {

constexpr int kCompletionBatch = 32;
constexpr unsigned kPollsPerSideChannelLook = 4096;  // the syscall stays off the fast path

const char* wrKindName(WrKind k) {
  switch (k) {
    case WrKind::kRecvBuffer: return "a receive";
    case WrKind::kSendSlot: return "a send";
    case WrKind::kCredit: return "a credit write";
    case WrKind::kWrite: return "an RDMA write";
    case WrKind::kRead:
    case WrKind::kReadGuard: return "an RDMA read";
  }
  return "a work request";
}

}  // namespace

int VerbsTransport::peerOfQp(uint32_t qpn) const {
  auto it = qpPeer_.find(qpn);
  return it == qpPeer_.end() ? -1 : it->second;
}

// A waiting thread's turn (CallerProgress): never blocks on the lock.
bool VerbsTransport::pollOnce() {
  std::unique_lock lock(mu_, std::try_to_lock);
  return lock && pollLocked(++polls_ % kPollsPerSideChannelLook == 0 || side_->holdsEvents());
}

// Under mu_: reads the completion queue, posts what waited, returns credits (and reads the side
// channel); true if anything moved.
bool VerbsTransport::pollLocked(bool sideChannel) {
  bool moved = false;
  ibv_wc wc[kCompletionBatch];
  for (;;) {
    const int n = ibv_poll_cq(cq_.get(), kCompletionBatch, wc);
    for (int i = 0; i < n; ++i) onCompletion(wc[i]);
    moved |= n > 0;
    if (n < kCompletionBatch) break;
  }
  if (connected_ && !broken_)
    for (int r = 0; r < id_.size; ++r)
      if (r != id_.rank) {
        moved |= drainQueues(r);
        moved |= returnCredits(r);
      }
  if (postError_) breakLocked(ErrorCode::kSystem, *std::exchange(postError_, std::nullopt), true);
  if (sideChannel && connected_) {
    handleSideChannel();
    releaseRetired(false);
  }
  return moved;
}

void VerbsTransport::onCompletion(const ibv_wc& wc) {
  const WrKind kind = wrKind(wc.wr_id);
  const uint64_t v = wrValue(wc.wr_id);
  const int peer = peerOfQp(wc.qp_num);
  const bool ok = wc.status == IBV_WC_SUCCESS;
  if (kind != WrKind::kRecvBuffer && peer >= 0) --peers_[peer].sqOutstanding;
  switch (kind) {
    case WrKind::kRecvBuffer:
      if (ok && peer >= 0 && !onMessage(peer, static_cast<uint32_t>(v), wc.byte_len)) break;  // held
      repostBuffer(static_cast<uint32_t>(v));
      if (ok && peer >= 0) peers_[peer].credits.freed();
      break;
    case WrKind::kSendSlot:
      freeSlots_.push_back(static_cast<uint32_t>(v));
      break;
    case WrKind::kCredit:
      if (peer >= 0) peers_[peer].creditWriteInFlight = false;
      break;
    case WrKind::kWrite:
      if (peer >= 0) --peers_[peer].dataInFlight;
      if (auto it = sends_.find(v); it != sends_.end()) {
        SendOp& op = *it->second;
        --op.outstanding;
        if (!ok) op.stopped = true;
        // Done: every write landed, or the receiver withdrew (a sender's own cancel finishes it).
        if (op.outstanding == 0 && !op.cancelled && (op.posted == op.bytes || op.stopped))
          finishSend(op.id, ok ? std::nullopt
                               : std::optional(std::pair{ErrorCode::kConnectionClosed,
                                                         std::string("RDMA write failed: ") + ibv_wc_status_str(wc.status)}));
      }
      break;
    case WrKind::kRead:
    case WrKind::kReadGuard:
      if (kind == WrKind::kRead && peer >= 0) --peers_[peer].dataInFlight;
      if (auto it = reads_.find(v); it != reads_.end()) {
        ReadOp& op = *it->second;
        --op.outstanding;
        if (!ok && !op.error) op.error = {ErrorCode::kRemote, std::string("RDMA read failed: ") + ibv_wc_status_str(wc.status)};
        if (op.outstanding > 0 || op.cancelled) break;  // (a cancelled read is finished by its canceller)
        if (op.error) finishRead(op.id, op.error);
        else if (op.posted == op.stageBytes()) stageRead(op);
      }
      break;
  }
  if (!ok) onWorkError(wc, peer);
}

// A work request failed. Flushed ones are expected once a queue pair was shut (by us, or a
// peer that left); anything else means the queue pair broke: the transport fails, naming the
// peer (or what the side channel says happened to it).
void VerbsTransport::onWorkError(const ibv_wc& wc, int peer) {
  if (broken_ || peer < 0 || peers_[peer].left || peers_[peer].errored) return;
  if (auto lost = lostPeerReason()) return breakLocked(ErrorCode::kConnectionClosed, *lost, true);
  breakLocked(ErrorCode::kConnectionClosed,
              id_.describe() + ": " + wrKindName(wrKind(wc.wr_id)) + " with " + peerName(peer) + " failed: " +
                  ibv_wc_status_str(wc.status) + " (vendor error " + std::to_string(wc.vendor_err) + ")",
              true);
}

// Reads the side channel without acting on it (safe inside completion handling).
std::optional<std::string> VerbsTransport::lostPeerReason() {
  if (!connected_) return std::nullopt;
  return side_->peekLoss([this](int peer) { return peerName(peer); });
}

void VerbsTransport::handleSideChannel() {
  for (auto& e : side_->takeEvents()) {
    if (auto b = SideChannel::breakFor(e, id_, peerName(e.peer))) {
      breakLocked(b->code, b->reason, b->relay);
      continue;
    }
    if (e.kind != SideChannel::Event::kLeft) continue;  // (suspicions are the heartbeat monitor's)
    // A goodbye. Its last messages may still be in the completion queue: take them first.
    for (auto until = Clock::now() + std::chrono::milliseconds(50); Clock::now() < until;)
      if (!pollLocked(false)) break;
    peerLeft(e.peer);
  }
}

// Under mu_, its lock released between polls: waits until `done`, polling. A peer that has not
// answered by the cancel timeout has its queue pair shut (nothing of it can land here any more)
// and the transport breaks naming it.
void VerbsTransport::awaitPeer(std::unique_lock<std::mutex>& lock, int peer, const std::function<bool()>& done,
                               const std::string& what) {
  const auto until = Clock::now() + opts_.cancelTimeout;
  while (!done()) {
    if (Clock::now() >= until) {
      toError(peer);  // its posted work now completes (flushed): give it a moment to
      for (auto flush = Clock::now() + std::chrono::seconds(1); !done() && Clock::now() < flush;)
        if (!pollLocked(false)) {
          lock.unlock();
          std::this_thread::yield();
          lock.lock();
        }
      if (broken_) return;
      breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": " + peerName(peer) + " did not answer " + what + " within " +
                                                    std::to_string(opts_.cancelTimeout.count()) + " ms; its queue pair was shut", true);
      return;
    }
    if (!pollLocked(true)) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
}

// Request::cancel's hook for a receive: runs under no lock; returns once no write of the peer
// can land in the buffer any more.
void VerbsTransport::cancelRecv(const std::weak_ptr<RecvOp>& weak) {
  RecvPtr r = weak.lock();
  if (!r) return;
  std::unique_lock lock(mu_);
  if (r->state == RecvOp::kMatching) {
    matcher_.withdraw(r->peer, r->key);
    return;
  }
  if (!rendezvous_.count(r->id)) return;  // finished meanwhile
  if (r->state == RecvOp::kCtsSent) {  // (kCancelling: another thread's cancel asked already)
    r->state = RecvOp::kCancelling;
    WireHeader c;
    c.type = MsgType::kCancel;
    c.a = r->sendId;
    c.b = r->id;
    queueMessage(r->peer, c, nullptr, 0);
  }
  awaitPeer(lock, r->peer, [&] { return !rendezvous_.count(r->id); }, "the cancel of the " + r->req->what());
  rendezvous_.erase(r->id);
}

// Request::cancel's hook for a large send: returns once no write reads the buffer any more.
void VerbsTransport::cancelSend(uint64_t id) {
  std::unique_lock lock(mu_);
  auto it = sends_.find(id);
  if (it == sends_.end()) return;
  SendOp& op = *it->second;
  if (!op.writing) {  // nothing posted from the buffer: the receiver's answer gets "cancelled"
    sends_.erase(it);
    return;
  }
  op.cancelled = op.stopped = true;
  const int peer = op.peer;
  const uint64_t recvId = op.recvId;
  const bool finQueued = unqueueWrites(op);
  awaitPeer(lock, peer, [&] {
    auto i = sends_.find(id);
    return i == sends_.end() || i->second->outstanding == 0;
  }, "the cancel of the " + op.req->what());
  sends_.erase(id);
  if (finQueued && !broken_) {  // the receiver learns that what landed is partial
    WireHeader fin;
    fin.type = MsgType::kFin;
    fin.status = MsgStatus::kCancelled;
    fin.a = recvId;
    queueMessage(peer, fin, nullptr, 0);
  }
}

// Request::cancel's hook for a read.
void VerbsTransport::cancelRead(uint64_t id) {
  std::unique_lock lock(mu_);
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  ReadOp& op = *it->second;
  op.cancelled = true;
  const int peer = op.peer;
  std::erase_if(peers_[peer].control, [&](const Outgoing& o) { return o.kind == Outgoing::kRead && o.op == id; });
  awaitPeer(lock, peer, [&] {
    auto i = reads_.find(id);
    return i == reads_.end() || i->second->outstanding == 0;
  }, "the cancel of the " + op.req->what());
  if (auto i = reads_.find(id); i != reads_.end()) {
    freeLanding_.push_back(static_cast<uint32_t>(i->second->landing));
    reads_.erase(i);
  }
}

void VerbsTransport::toError(int peer) {
  Peer& p = peers_[peer];
  if (p.errored || !p.qp) return;
  errorQueuePair(p.qp.get());
  p.errored = true;
}

// A peer that said goodbye hung up: only what involves it fails (what it sent before stays
// receivable).
void VerbsTransport::peerLeft(int peer) {
  peers_[peer].left = true;
  toError(peer);
  const std::string why = peerName(peer) + " left the group (it destroyed its communicator)";
  failPeerOps(peer, ErrorCode::kConnectionClosed, why);
  logger().debug("{}: {}", id_.describe(), why);
}

// Fails everything pending and everything later; with tellPeers, sends the reason to every peer.
// Every queue pair is shut first, so no peer's write lands in a buffer handed back.
void VerbsTransport::breakLocked(ErrorCode code, const std::string& reason, bool tellPeers) {
  if (broken_) return;
  broken_ = reason;
  brokenCode_ = code;
  if (tellPeers && side_) side_->sendAbort(reason);
  notifyBroken(code, reason);
  const bool pending = pendingWork() || !selfMessages_.empty();
  for (int r = 0; r < id_.size; ++r)
    if (r != id_.rank) toError(r);
  failPeerOps(-1, code, reason);
  selfMessages_.failAll(code, reason);
  if (pending || tellPeers) logger().warn("{}", reason);
  else logger().debug("{}", reason);
}

// Under mu_, with the peer's queue pair shut: fails every operation with `peer` (-1: all).
void VerbsTransport::failPeerOps(int peer, ErrorCode code, const std::string& why) {
  auto mine = [peer](int p) { return peer < 0 || p == peer; };
  auto fail = [&](RequestState& req) { req.fail(code, req.what() + " failed: " + why); };
  for (int r = 0; r < id_.size; ++r) {
    if (r == id_.rank || !mine(r)) continue;
    for (auto& w : matcher_.takeWaiting(r)) fail(*w->req);
    peers_[r].control.clear();
    peers_[r].eager.clear();
    peers_[r].announced.clear();
  }
  std::erase_if(rendezvous_, [&](auto& kv) {
    if (!mine(kv.second->peer)) return false;
    if (kv.second->state != RecvOp::kCancelling) fail(*kv.second->req);
    return true;
  });
  std::erase_if(sends_, [&](auto& kv) {
    if (!mine(kv.second->peer)) return false;
    fail(*kv.second->req);
    return true;
  });
  std::erase_if(reads_, [&](auto& kv) {
    if (!mine(kv.second->peer)) return false;
    freeLanding_.push_back(static_cast<uint32_t>(kv.second->landing));
    fail(*kv.second->req);
    return true;
  });
}

bool VerbsTransport::pendingWork() const {
  if (!sends_.empty() || !reads_.empty() || !rendezvous_.empty()) return true;
  for (int r = 0; r < id_.size; ++r) {
    const Peer& p = peers_[r];
    if (r != id_.rank && !p.left && !p.errored && p.sqOutstanding) return true;
  }
  return anyQueued();
}

// Messages wait for room: credits come back by RDMA WRITE, which raises no completion here.
bool VerbsTransport::anyQueued() const {
  for (int r = 0; r < id_.size; ++r) {
    const Peer& p = peers_[r];
    if (r != id_.rank && !p.left && !p.errored && (!p.control.empty() || !p.eager.empty())) return true;
  }
  return false;
}

// Under mu_: what the device reports by itself — a queue pair, completion queue, port or the
// device failing — breaks the transport, naming it (rather than waiting on work that will not
// complete).
void VerbsTransport::handleAsyncEvents() {
  ibv_async_event ev{};
  while (ibv_get_async_event(device_->context(), &ev) == 0) {
    std::optional<std::string> why;
    switch (ev.event_type) {
      case IBV_EVENT_QP_FATAL:
      case IBV_EVENT_QP_REQ_ERR:
      case IBV_EVENT_QP_ACCESS_ERR:
        if (int peer = peerOfQp(ev.element.qp->qp_num); peer >= 0 && !peers_[peer].left && !peers_[peer].errored)
          why = "the queue pair to " + peerName(peer) + " failed (" + ibv_event_type_str(ev.event_type) + ")";
        break;
      case IBV_EVENT_PORT_ERR:
        if (ev.element.port_num == device_->port()) why = "RDMA port " + device_->describe() + " went down";
        break;
      case IBV_EVENT_CQ_ERR:
      case IBV_EVENT_SRQ_ERR:
      case IBV_EVENT_DEVICE_FATAL:
        why = "RDMA device " + device_->describe() + ": " + ibv_event_type_str(ev.event_type);
        break;
      default:
        break;
    }
    ibv_ack_async_event(&ev);
    if (why && !broken_) breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": " + *why, true);
  }
}

void VerbsTransport::progressLoop() {
  auto lastMoved = Clock::now();
  bool armed = false;
  while (!stop_.load()) {
    if (progress_->standAside()) continue;  // waiters are polling (see CallerProgress)
    bool moved, busy, queued;
    {
      std::lock_guard lock(mu_);
      moved = pollLocked(true);
      if (!moved && !armed) {  // ask for an event, then look once more (one may have come meanwhile)
        armed = ibv_req_notify_cq(cq_.get(), 0) == 0;
        moved = pollLocked(false);
      }
      busy = pendingWork();
      queued = anyQueued();
      // Decided under the lock: anything posted from here on writes the wake-up descriptor.
      wakeup_.mayBeAsleep(!moved);
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
    if (queued) {  // waiting for credits, which come back without a completion: look again soon
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      wakeup_.mayBeAsleep(false);
      continue;
    }
    // Nothing moves: sleep until a completion, a device event, the side channel or a new
    // operation (or a while passes: retired registrations are released).
    epoll_event events[4];
    const int n = ::epoll_wait(epoll_.get(), events, 4, busy ? 10 : 100);
    wakeup_.mayBeAsleep(false);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == device_->context()->async_fd) {
        std::lock_guard lock(mu_);
        handleAsyncEvents();
      } else if (events[i].data.fd == wakeup_.fd()) {
        wakeup_.drain();
      } else if (events[i].data.fd == channel_->fd) {
        ibv_cq* cq = nullptr;
        void* ctx = nullptr;
        if (ibv_get_cq_event(channel_.get(), &cq, &ctx) == 0) {
          ibv_ack_cq_events(cq, 1);
          armed = false;
        }
      }
    }
  }
}

}  // namespace eccl::transport::verbs
