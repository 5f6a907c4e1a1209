// The verbs transport's receiving side: posting receives and matching them (unexpected,
// held and announced messages), the rendezvous answer, and the messages peers send (eager data,
// announcements, clear-to-send, finished, cancels).
#include <algorithm>
#include <cstring>

#include "transport/ibverbs/verbs_transport_impl.h"

namespace eccl::transport::verbs {

RequestPtr VerbsTransport::irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "receive", data, bytes, region);
  // A receive beyond the eager limit can only match a rendezvous: its buffer is registered now,
  // outside the lock.
  MrPtr own = !region && bytes > opts_.eagerBytes && peer != id_.rank
                  ? registerRange(data, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, "a receive's buffer")
                  : nullptr;
  std::lock_guard lock(mu_);
  auto req = newRequest(RequestLabel::Op::kRecv, peer, tag, bytes);
  if (!admit(*req, peer, true)) return req;
  auto* buf = static_cast<uint8_t*>(data);
  if (peer == id_.rank) {
    if (selfMessages_.post(false, tag, req, buf, bytes)) setSelfCanceller(false, tag, req);
    return req;
  }
  auto r = std::make_shared<RecvOp>();
  r->mr = region ? mrFor(region, data, bytes, "a receive's buffer") : std::move(own);
  r->req = req;
  r->peer = peer;
  r->data = buf;
  r->bytes = bytes;
  r->key = matcher_.numberReceive(peer, tag);
  req->setCanceller([this, w = std::weak_ptr<RecvOp>(r)] { cancelRecv(w); });  // (whichever way it matches)
  Peer& p = peers_[peer];
  if (auto* u = matcher_.unexpected(peer, r->key)) {  // (eager messages arrive whole)
    deliver(*r, u->data.data(), u->data.size());
    matcher_.release(peer, r->key);
    deliverHeld();
    return req;
  }
  auto held = std::find_if(p.held.begin(), p.held.end(), [&](const HeldMessage& m) { return m.key == r->key; });
  if (held != p.held.end()) {
    deliver(*r, recvMem_.get() + size_t(held->buffer) * slotBytes_ + sizeof(WireHeader), held->bytes);
    repostBuffer(held->buffer);
    p.credits.freed();
    p.held.erase(held);
    wakeup_.wake();  // (the credit may be owed at once: see CreditLedger::owesWrite)
    return req;
  }
  if (auto rts = p.announced.find(r->key); rts != p.announced.end()) {
    const WireHeader h = rts->second;
    p.announced.erase(rts);
    startRendezvous(r, h);
    return req;
  }
  if (p.left) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
    return req;
  }
  matcher_.post(peer, r->key, r);
  return req;
}

void VerbsTransport::setSelfCanceller(bool send, Tag tag, const std::shared_ptr<RequestState>& req) {
  req->setCanceller([this, send, tag, state = req.get()] {
    std::lock_guard l(mu_);
    selfMessages_.withdraw(send, tag, state);
  });
}

// Under mu_: the message `bytes` long for receive `r` has arrived whole at `data`.
void VerbsTransport::deliver(RecvOp& r, const uint8_t* data, size_t bytes) {
  if (bytes != r.bytes) {
    r.req->fail(ErrorCode::kInvalidArgument, r.req->what() + ": " + peerName(r.peer) + " sent " + std::to_string(bytes) +
                                                 " bytes for this message (size mismatch)");
    return;
  }
  if (bytes) std::memcpy(r.data, data, bytes);
  r.req->complete();
}

// Under mu_: room was freed in the unexpected budget; held messages move there and their
// buffers go back to the peers.
void VerbsTransport::deliverHeld() {
  for (int peer = 0; peer < id_.size; ++peer) {
    Peer& p = peers_[peer];
    while (!p.held.empty()) {
      const HeldMessage m = p.held.front();
      auto* u = matcher_.reserve(peer, m.key, m.bytes);
      if (!u) return;
      std::memcpy(u->data.data(), recvMem_.get() + size_t(m.buffer) * slotBytes_ + sizeof(WireHeader), m.bytes);
      u->received = m.bytes;
      repostBuffer(m.buffer);
      p.credits.freed();
      p.held.pop_front();
      wakeup_.wake();
    }
  }
}

// Under mu_: a large message's announcement met its receive: answer with where to write it.
void VerbsTransport::startRendezvous(const RecvPtr& r, const WireHeader& rts) {
  WireHeader cts;
  cts.type = MsgType::kCts;
  cts.a = rts.b;
  if (rts.a != r->bytes) {
    cts.status = MsgStatus::kMismatch;
    cts.address = r->bytes;
    queueMessage(r->peer, cts, nullptr, 0);
    r->req->fail(ErrorCode::kInvalidArgument, r->req->what() + ": " + peerName(r->peer) + " sent " + std::to_string(rts.a) +
                                                  " bytes for this message (size mismatch)");
    return;
  }
  if (!r->mr) {  // (cannot happen: a receive this large registers when posted)
    cts.status = MsgStatus::kRefused;
    queueMessage(r->peer, cts, nullptr, 0);
    r->req->fail(ErrorCode::kInvalidArgument, r->req->what() + ": its buffer is not registered");
    return;
  }
  r->id = nextOpId_++;
  r->sendId = rts.b;
  r->state = RecvOp::kCtsSent;
  cts.b = r->id;
  cts.address = reinterpret_cast<uintptr_t>(r->data);
  cts.key = r->mr->rkey;
  rendezvous_.emplace(r->id, r);
  queueMessage(r->peer, cts, nullptr, 0);
}

// Under mu_: a message from `peer` is in receive buffer `buffer`. False when it stays there
// (eager data beyond the unexpected budget).
bool VerbsTransport::onMessage(int peer, uint32_t buffer, size_t length) {
  const uint8_t* at = recvMem_.get() + size_t(buffer) * slotBytes_;
  if (length < sizeof(WireHeader)) {
    if (!postError_) postError_ = id_.describe() + ": " + peerName(peer) + " sent a " + std::to_string(length) + "-byte message (protocol error)";
    return true;
  }
  WireHeader h;
  std::memcpy(&h, at, sizeof(h));
  Peer& p = peers_[peer];
  p.credits.returned(h.credits);
  const MessageKey key{h.tag, h.seq};
  switch (h.type) {
    case MsgType::kEager: {
      const size_t n = length - sizeof(WireHeader);
      if (RecvPtr r = matcher_.unpost(peer, key)) {
        deliver(*r, at + sizeof(WireHeader), n);
        return true;
      }
      if (matcher_.receiveNumbered(peer, key)) return true;  // its receive was cancelled: dropped
      if (auto* u = matcher_.reserve(peer, key, n)) {
        if (n) std::memcpy(u->data.data(), at + sizeof(WireHeader), n);
        u->received = n;
        return true;
      }
      p.held.push_back({buffer, key, n});
      return false;
    }
    case MsgType::kRts:
      if (RecvPtr r = matcher_.unpost(peer, key)) {
        startRendezvous(r, h);
      } else if (matcher_.receiveNumbered(peer, key)) {  // its receive was cancelled: the send is done
        WireHeader cts;
        cts.type = MsgType::kCts;
        cts.status = MsgStatus::kDropped;
        cts.a = h.b;
        queueMessage(peer, cts, nullptr, 0);
      } else {
        p.announced.emplace(key, h);
      }
      return true;
    case MsgType::kCts:
      onClearToSend(peer, h);
      return true;
    case MsgType::kFin:
      if (auto it = rendezvous_.find(h.a); it != rendezvous_.end()) {
        RecvPtr r = it->second;
        rendezvous_.erase(it);
        if (r->state == RecvOp::kCancelling) return true;  // its canceller reports it
        if (h.status == MsgStatus::kOk) r->req->complete();
        else r->req->fail(ErrorCode::kAborted, r->req->what() + ": " + peerName(peer) + " cancelled the send (the buffer holds part of it)");
      }
      return true;
    case MsgType::kCancel:
      onCancel(peer, h);
      return true;
    case MsgType::kCancelAck:
      rendezvous_.erase(h.a);
      return true;
  }
  if (!postError_) postError_ = id_.describe() + ": " + peerName(peer) + " sent a message of unknown type " + std::to_string(int(h.type));
  return true;
}

// Under mu_: the receiver answered a large send's announcement.
void VerbsTransport::onClearToSend(int peer, const WireHeader& h) {
  auto it = sends_.find(h.a);
  if (it == sends_.end()) {  // its sender cancelled it before the answer came
    if (h.status == MsgStatus::kOk) {
      WireHeader fin;
      fin.type = MsgType::kFin;
      fin.status = MsgStatus::kCancelled;
      fin.a = h.b;
      queueMessage(peer, fin, nullptr, 0);
    }
    return;
  }
  SendOp& op = *it->second;
  switch (h.status) {
    case MsgStatus::kOk: {
      op.writing = true;
      op.recvId = h.b;
      op.remoteAddress = h.address;
      op.rkey = h.key;
      Outgoing writes;
      writes.kind = Outgoing::kWrite;
      writes.op = op.id;
      peers_[peer].control.push_back(std::move(writes));
      WireHeader fin;
      fin.type = MsgType::kFin;
      fin.a = h.b;
      queueMessage(peer, fin, nullptr, 0);  // (queued behind the writes: RC delivers it after them)
      return;
    }
    case MsgStatus::kMismatch:
      return finishSend(op.id, std::pair{ErrorCode::kInvalidArgument, peerName(peer) + " expects " + std::to_string(h.address) +
                                                                          " bytes for this message (size mismatch)"});
    case MsgStatus::kDropped:
      return finishSend(op.id, std::nullopt);
    default:
      return finishSend(op.id, std::pair{ErrorCode::kRemote, peerName(peer) + " could not take the message (registering its buffer failed)"});
  }
}

// Under mu_: drops what is still queued of `op`'s writes and of its "finished"; true if the
// "finished" had not gone out yet.
bool VerbsTransport::unqueueWrites(SendOp& op) {
  auto& q = peers_[op.peer].control;
  std::erase_if(q, [&](const Outgoing& o) { return o.kind == Outgoing::kWrite && o.op == op.id; });
  const size_t before = q.size();
  std::erase_if(q, [&](const Outgoing& o) {
    return o.kind == Outgoing::kMessage && o.header.type == MsgType::kFin && o.header.a == op.recvId;
  });
  return q.size() < before;
}

// Under mu_: the receiver withdraws its clear-to-send; the answer follows every write posted.
void VerbsTransport::onCancel(int peer, const WireHeader& h) {
  auto it = sends_.find(h.a);
  if (it != sends_.end() && it->second->writing && it->second->recvId == h.b) {
    SendOp& op = *it->second;
    op.stopped = true;
    unqueueWrites(op);
    if (op.outstanding == 0 && !op.cancelled) finishSend(op.id, std::nullopt);  // the receiver dropped it: done
  }
  WireHeader ack;
  ack.type = MsgType::kCancelAck;
  ack.a = h.b;
  queueMessage(peer, ack, nullptr, 0);
}

void VerbsTransport::finishSend(uint64_t id, std::optional<std::pair<ErrorCode, std::string>> error) {
  auto it = sends_.find(id);
  if (it == sends_.end()) return;
  auto& req = *it->second->req;
  if (error) req.fail(error->first, req.what() + ": " + error->second);
  else req.complete();
  sends_.erase(it);
}

void VerbsTransport::finishRead(uint64_t id, std::optional<std::pair<ErrorCode, std::string>> error) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  ReadOp& op = *it->second;
  freeLanding_.push_back(static_cast<uint32_t>(op.landing));
  if (error) op.req->fail(error->first, op.req->what() + ": " + error->second);
  else op.req->complete();
  reads_.erase(it);
}

}  // namespace eccl::transport::verbs
