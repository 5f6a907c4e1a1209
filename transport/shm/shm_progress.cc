// The receive side of the shared-memory transport: reading peers' records from our rings,
// matching them to receives (or holding them), copying large messages by cross-memory attach,
// cancelling, the side channel, failures, and the progress thread.
#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/logging.h"
#include "transport/shm/shm_transport_impl.h"

namespace eccl::transport::shm {
namespace {

constexpr int kRecordsPerPeerPoll = 64;  // then the next peer has a turn

}  // namespace

// Copies `bytes` at `remote` in process `pid` into `dst`. Empty on success, else why not.
std::string copyFromProcess(pid_t pid, uint64_t remote, uint8_t* dst, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    iovec l{dst + done, bytes - done}, r{reinterpret_cast<void*>(remote + done), bytes - done};
    ssize_t n = ::process_vm_readv(pid, &l, 1, &r, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::string("process_vm_readv: ") + (n < 0 ? std::strerror(errno) : "no progress");
    done += static_cast<size_t>(n);
  }
  return {};
}


bool ShmTransport::pollOnce() {
  // Most polls of a waiting caller find nothing: find that out without the lock.
  if (!ready_.load(std::memory_order_acquire)) return false;
  bool work = backlogged_.load(std::memory_order_relaxed) > 0;
  for (size_t i = 0; i < inbound_.size() && !work; ++i) work = RingReader::mayHaveRecords(inbound_[i]);
  if (!work) return false;
  std::unique_lock lock(mu_, std::try_to_lock);
  return lock && pollLocked();
}

// Under mu_: handles what peers wrote and writes what waited for room; true if anything moved.
bool ShmTransport::pollLocked() {
  if (!connected_) return false;
  bool moved = false;
  for (int r = 0; r < id_.size; ++r) {
    Peer& p = peers_[r];
    if (!p.member) continue;
    for (int n = 0; n < kRecordsPerPeerPoll; ++n) {
      const uint8_t* rec = p.in.front();
      if (!rec || !dispatch(r, rec, p.in.frontBytes())) break;
      p.in.pop();
      moved = true;
    }
    p.in.release();
    if (p.in.corrupt() && !broken_)
      breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(r) + " wrote a record of an impossible size into its ring", true);
    if (!p.backlog.empty()) moved |= drainBacklog(r);
    if (p.left) settleDeparted(r);
  }
  moved |= pumpStreams();
  ringDoorbells();
  return moved;
}

bool ShmTransport::dispatch(int peer, const uint8_t* record, size_t recordBytes) {
  const auto& h = *reinterpret_cast<const RecordHeader*>(record);
  switch (h.type) {
    case kEager: {
      const MessageRecord m = *reinterpret_cast<const MessageRecord*>(record);  // (read once: the peer's memory)
      if (m.bytes <= recordBytes - sizeof(MessageRecord)) return onEager(peer, m, record + sizeof(MessageRecord));
      breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(peer) + " wrote a message of " + std::to_string(m.bytes) +
                                            " bytes into a " + std::to_string(recordBytes) + "-byte record",
                  true);
      return true;
    }
    case kAnnounce:
      onAnnounce(peer, *reinterpret_cast<const MessageRecord*>(record));
      return true;
    case kDone:
    case kRevoked:
      finishSend(peer, reinterpret_cast<const ControlRecord*>(record)->sendId, h.type == kRevoked);
      return true;
    case kRevoke:
      onRevoke(peer, reinterpret_cast<const ControlRecord*>(record)->sendId);
      return true;
    case kPull:
      onPull(peer, reinterpret_cast<const ControlRecord*>(record)->sendId);
      return true;
    case kGrant: {
      const auto* m = reinterpret_cast<const MessageRecord*>(record);
      onGrant(peer, Key{m->tag, m->seq});
      return true;
    }
    case kChunk:
      onChunk(peer, *reinterpret_cast<const ChunkRecord*>(record));  // (copied: read once)
      return true;
    case kFreed:
      onFreed(peer, reinterpret_cast<const ChunkRecord*>(record)->slot);
      return true;
  }
  breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(peer) + " wrote a record of unknown type " + std::to_string(h.type), true);
  return true;
}

// A receive for a message of `sent` bytes: false (and the receive failed) when the sizes differ.
bool ShmTransport::sizesAgree(int peer, RecvOp& op, uint64_t sent) {
  if (op.bytes == sent) return true;
  op.req->fail(ErrorCode::kInvalidArgument, op.req->what() + ": " + peerName(peer) + " sent " + std::to_string(sent) +
                                                 " bytes for this message (size mismatch)");
  return false;
}

// False: no room to hold it yet (the record stays in the ring until a receive or space comes).
bool ShmTransport::onEager(int peer, const MessageRecord& m, const uint8_t* payload) {
  const Key key{m.tag, m.seq};
  if (!peers_[peer].granted.empty()) peers_[peer].granted.erase(key);  // (a large receive, a small message)
  if (auto* posted = matcher_.posted(peer, key)) {
    auto op = matcher_.unpost(peer, key);
    if (sizesAgree(peer, *op, m.bytes)) {
      if (m.bytes) std::memcpy(op->data, payload, m.bytes);
      op->req->complete();
    }
    (void)posted;
    return true;
  }
  if (matcher_.receiveNumbered(peer, key)) return true;  // its receive was cancelled: dropped
  auto* u = matcher_.reserve(peer, key, m.bytes);
  if (!u) return false;
  if (m.bytes) std::memcpy(u->data.data(), payload, m.bytes);
  u->received = m.bytes;
  return true;
}

void ShmTransport::receiveUnexpected(int peer, const std::shared_ptr<RecvOp>& op) {
  Matcher::Unexpected& u = *matcher_.unexpected(peer, op->key);
  if (sizesAgree(peer, *op, u.data.size()) && op->bytes) std::memcpy(op->data, u.data.data(), op->bytes);
  matcher_.release(peer, op->key);
  op->req->complete();  // (no effect when it failed)
}

void ShmTransport::onAnnounce(int peer, const MessageRecord& m) {
  const Key key{m.tag, m.seq};
  const Announcement a{m.bytes, m.address, m.sendId};
  const bool granted = peers_[peer].granted.erase(key) > 0;  // it streams without being asked
  if (matcher_.posted(peer, key)) return receiveAnnounced(peer, matcher_.unpost(peer, key), a, granted);
  if (granted) return receiveAnnounced(peer, nullptr, a, true);  // cancelled receive: its chunks are dropped
  if (matcher_.receiveNumbered(peer, key)) {  // cancelled receive: dropped
    emit(peer, {kDone, nullptr, a.sendId});
    return;
  }
  peers_[peer].waiting.emplace(key, a);
}

// Pulls a large message through the sender's pool (when it has one), or copies it straight from
// the sender's buffer and lets the sender go. `granted`: the sender streams it unasked (kGrant);
// then its chunks are taken even for a receive that is gone (op null) or of another size.
void ShmTransport::receiveAnnounced(int peer, const std::shared_ptr<RecvOp>& op, const Announcement& a, bool granted) {
  if (peers_[peer].pool) {
    const bool fits = op && sizesAgree(peer, *op, a.bytes);
    if (fits) op->pullId = a.sendId;
    if (fits || granted) peers_[peer].pulling.emplace(a.sendId, Pulling{fits ? op : nullptr, a.bytes, 0});
    if (!granted) emit(peer, {fits ? kPull : kDone, nullptr, a.sendId});
    return;
  }
  if (sizesAgree(peer, *op, a.bytes)) {
    std::string err = copyFromProcess(peers_[peer].pid, a.address, op->data, a.bytes);
    // The sender may have broken (and handed its buffer back) while we copied.
    if (err.empty() && peers_[peer].header->closed.load(std::memory_order_seq_cst)) {
      const char* why = peers_[peer].header->closedReason;
      err = "it broke or left while the copy ran (" + std::string(why, ::strnlen(why, sizeof(peers_[peer].header->closedReason))) + ")";
    }
    if (err.empty()) op->req->complete();
    else op->req->fail(ErrorCode::kConnectionClosed, op->req->what() + " failed: copying from " + peerName(peer) + " failed: " + err);
  }
  emit(peer, {kDone, nullptr, a.sendId});
}

// The sender cancels a large message: drop it unless it is read already; answer either way.
void ShmTransport::onRevoke(int peer, uint64_t sendId) {
  Peer& p = peers_[peer];
  if (auto it = p.pulling.find(sendId); it != p.pulling.end()) {  // part of it may be in the buffer
    if (auto& op = it->second.op)
      op->req->fail(ErrorCode::kAborted, op->req->what() + " failed: " + peerName(peer) + " cancelled this message while it was being copied (the buffer holds part of it)");
    p.pulling.erase(it);
  }
  for (auto it = p.waiting.begin(); it != p.waiting.end(); ++it)
    if (it->second.sendId == sendId) {
      p.revoked.insert(it->first);
      p.waiting.erase(it);
      break;
    }
  emit(peer, {kRevoked, nullptr, sendId});
}

// The receiver is finished with our large send (kDone), or agreed to drop it (revoked).
void ShmTransport::finishSend(int peer, uint64_t sendId, bool revoked) {
  auto& announced = peers_[peer].announced;
  auto it = announced.find(sendId);
  if (it == announced.end()) return;  // a revoke answered after the copy's kDone
  auto op = std::move(it->second);
  announced.erase(it);
  if (revoked) {
    op->req->fail(ErrorCode::kAborted, op->req->what() + " was cancelled before " + peerName(peer) + " received it");
  } else {
    op->copyRest();  // (nothing left for one that completed in the pool: it is the caller's again)
    op->req->complete();
  }
}

// Request::cancel's hook (no lock held). A send not on the ring yet goes out later from a private
// copy; a large send on the ring is revoked, and this returns once the receiver has answered.
void ShmTransport::cancelSend(int peer, const std::shared_ptr<SendOp>& op) {
  std::unique_lock lock(mu_);
  if (op->req->test()) return;
  if (peer == id_.rank) {  // waiting for its receive: it is delivered from a copy
    op->owned.assign(op->data, op->data + op->bytes);
    op->data = op->owned.data();
    return;
  }
  Peer& p = peers_[peer];
  for (auto& o : p.backlog)
    if (o.op == op && (o.type == kEager || o.type == kAnnounce)) {  // (a last kChunk: all of it is in the pool)
      // Now: once cancel returns nothing may write into the caller's buffers, and the send may
      // yet complete (the backlog written before the cancel marks it failed), so the copy must be whole.
      op->copyRest();
      op->owned.assign(op->data, op->data + op->bytes);
      op->data = op->owned.data();
      return;
    }
  if (!p.announced.count(op->id)) return;
  op->revoking = true;
  emit(peer, {kRevoke, nullptr, op->id});
  ringDoorbells();
  for (auto until = Clock::now() + std::chrono::seconds(10); p.announced.count(op->id) && !broken_;) {
    if (Clock::now() >= until) {
      breakLocked(ErrorCode::kTimeout, id_.describe() + ": " + peerName(peer) + " did not answer the cancel of a send within 10 s", true);
      break;
    }
    if (!pollLocked()) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
}

// Receives are filled under the lock, so once withdrawn nothing writes into the buffer.
void ShmTransport::cancelRecv(int peer, const std::shared_ptr<RecvOp>& op) {
  std::lock_guard lock(mu_);
  if (op->req->test()) return;
  if (op->pullId) cancelPull(peer, *op);
  else matcher_.withdraw(peer, op->key);
}

void ShmTransport::handleSideChannel() {
  for (auto& e : side_->poll()) {
    if (auto b = SideChannel::breakFor(e, id_, peerName(e.peer))) breakLocked(b->code, b->reason, b->relay);
    else if (e.kind == SideChannel::Event::kLeft) peerLeft(e.peer);  // (suspicions are the heartbeat monitor's)
  }
}

// A peer said goodbye. What it wrote before is in our ring (in our memory) and is still
// received; only what waits for more from it fails, once its ring is empty (settleDeparted).
void ShmTransport::peerLeft(int peer) {
  Peer& p = peers_[peer];
  p.left = true;
  for (auto& o : p.backlog)
    if (o.op) o.op->req->fail(ErrorCode::kConnectionClosed, o.op->req->what() + " failed: " + peerName(peer) + " left the group");
  if (!p.backlog.empty()) backlogged_.fetch_sub(1, std::memory_order_relaxed);
  p.backlog.clear();
  pollLocked();
  settleDeparted(peer);
  logger().debug("{}: {} left the group", id_.describe(), peerName(peer));
}

// Under mu_: once a departed peer's ring is empty, what still waits for it fails.
void ShmTransport::settleDeparted(int peer) {
  Peer& p = peers_[peer];
  if (!p.left || p.in.front()) return;
  const std::string why = peerName(peer) + " left the group (it destroyed its communicator)";
  failPeer(peer, ErrorCode::kConnectionClosed, why);
}

// Under mu_: fails every operation with `peer`.
void ShmTransport::failPeer(int peer, ErrorCode code, const std::string& why) {
  Peer& p = peers_[peer];
  for (auto& r : matcher_.takeWaiting(peer)) r->req->fail(code, r->req->what() + " failed: " + why);
  for (auto& o : p.backlog)
    if (o.op) o.op->req->fail(code, o.op->req->what() + " failed: " + why);
  if (!p.backlog.empty()) backlogged_.fetch_sub(1, std::memory_order_relaxed);
  p.backlog.clear();
  for (auto& [id, s] : p.announced) s->req->fail(code, s->req->what() + " failed: " + why);
  p.announced.clear();
  p.waiting.clear();
  p.granted.clear();
  p.grants.clear();
  failPulls(peer, code, why);
}

void ShmTransport::breakLocked(ErrorCode code, const std::string& reason, bool tellPeers) {
  if (broken_) return;
  const size_t n = std::min(reason.size(), sizeof(header()->closedReason) - 1);
  std::memcpy(header()->closedReason, reason.data(), n);
  header()->closedReason[n] = '\0';
  header()->closed.store(1, std::memory_order_seq_cst);  // before any announced send is failed
  broken_ = reason;
  brokenCode_ = code;
  if (tellPeers && connected_) side_->sendAbort(reason);
  notifyBroken(code, reason);
  const bool pending = pendingWork();
  for (int r = 0; r < id_.size; ++r) failPeer(r, code, reason);
  for (auto& [k, s] : selfSends_) s->req->fail(code, s->req->what() + " failed: " + reason);
  selfSends_.clear();
  if (pending || tellPeers) logger().warn("{}", reason);
  else logger().debug("{}", reason);
}

bool ShmTransport::pendingWork() const {
  if (!selfSends_.empty() || !streams_.empty()) return true;
  for (int r = 0; r < id_.size; ++r) {
    const Peer& p = peers_[r];
    if (!p.backlog.empty() || !p.announced.empty() || !p.pulling.empty() || matcher_.anyPosted(r)) return true;
  }
  return false;
}

void ShmTransport::progressLoop() {
  SegmentHeader* h = header();
  auto lastMoved = Clock::now();
  while (!stop_.load()) {
    if (progress_->standAside()) continue;  // waiters are polling (see CallerProgress)
    const uint32_t bell = h->doorbell.load(std::memory_order_acquire);
    bool moved, busy;
    {
      std::lock_guard lock(mu_);
      moved = pollLocked();
      busy = pendingWork();
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
    // Sleep until a peer writes to us (it rings the doorbell when it sees `sleeping`), an
    // operation is posted, or a while passes: briefly while operations are pending (a full ring
    // of ours frees up without a doorbell), longer when idle.
    h->sleeping.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool arrived = false;
    {
      std::lock_guard lock(mu_);
      arrived = pollLocked();
    }
    if (!arrived) {
      timespec ts{0, busy ? 100'000 : 50'000'000};
      ::syscall(SYS_futex, &h->doorbell, FUTEX_WAIT, bell, &ts, nullptr, 0);
    }
    h->sleeping.store(0, std::memory_order_relaxed);
  }
}

// The side channel has its own thread, so the progress thread can sleep on the doorbell alone
// and a crashed or aborting peer is still noticed at once.
void ShmTransport::sideChannelLoop() {
  pollfd fds[2] = {{side_->waitFd(), POLLIN, 0}, {stopSide_.get(), POLLIN, 0}};
  while (!stop_.load()) {
    if (::poll(fds, 2, -1) <= 0 || (fds[1].revents & POLLIN)) continue;
    std::lock_guard lock(mu_);
    handleSideChannel();
    // Once broken, the connections only repeat what they said: stop listening to them.
    if (broken_) break;
  }
}

}  // namespace eccl::transport::shm
