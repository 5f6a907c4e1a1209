// Pulling large messages through the sender's chunk pool (see shm_layout.h): the receiver, once
// its receive is posted, asks for the message (kPull); the sender copies it into free slots of
// its pool a chunk at a time, in order (kChunk), pulled sends taking turns; the receiver copies
// each chunk out and hands the slot back (kFreed), then ends the message (kDone).
// Only messages whose receive is posted (or was, when granted) take slots, and no peer holds more
// than half of them, so slots always come back and a receiver that stops reading holds up only
// its own messages. (A granted receive cancelled before its message came still takes the whole
// message through the pool, dropped chunk by chunk: the sender may be streaming it already.)
#include <cstring>

#include "transport/shm/shm_copy.h"
#include "transport/shm/shm_transport_impl.h"

namespace eccl::transport::shm {

// The receiver wants send id through our pool.
void ShmTransport::onPull(int peer, uint64_t sendId) {
  auto it = peers_[peer].announced.find(sendId);
  // Gone already (failed), or cancelled (its kRevoke crosses this pull; the receiver answers it).
  if (it == peers_[peer].announced.end() || it->second->revoking) return;
  if (it->second->pulled) {
    breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(peer) + " asked twice for message " + std::to_string(sendId), true);
    return;
  }
  stream(it->second);
}

void ShmTransport::stream(const std::shared_ptr<SendOp>& op) {
  op->pulled = true;
  streams_.push_back(op);
}

// The receiver posted the receive of message `key`: stream it now if it is announced already,
// else as soon as it is sent.
void ShmTransport::onGrant(int peer, Key key) {
  for (auto& [id, op] : peers_[peer].announced)
    if (op->key == key) {
      if (!op->revoking && !op->pulled) stream(op);
      return;
    }
  // Sent already (small, finished or revoked): nothing to stream. Else it streams when sent.
  if (!matcher_.sendNumbered(peer, key)) peers_[peer].grants.insert(key);
}

// A large receive posted before its message arrived: tell the sender to stream it unasked, which
// saves the kPull round trip. Only posted receives are granted, so only they take slots.
void ShmTransport::grant(int peer, const RecvOp& op) {
  Peer& p = peers_[peer];
  if (op.bytes <= opts_.eagerBytes || !p.pool) return;
  p.granted.insert(op.key);
  emit(peer, {kGrant, nullptr, 0, 0, 0, 0, op.key});
}

// Copies the next chunk of pulled sends into free slots, a chunk per send in turn; a send whose
// receiver holds its share of slots waits for one to come back.
bool ShmTransport::pumpStreams() {
  bool moved = false;
  for (size_t waiting = 0; !streams_.empty() && !freeChunks_.empty() && waiting < streams_.size();) {
    auto op = std::move(streams_.front());
    streams_.pop_front();
    // Revoked, failed, or its receiver gone. (A send cancelled before its announcement was
    // written finished as cancelled, but the receiver expects it: it streams from its copy.)
    const Peer& to = peers_[op->peer];
    if (op->revoking || (op->req->test() && op->owned.empty()) || to.left || !to.announced.count(op->id)) continue;
    if (chunksHeld_[op->peer] >= chunkCap_) {
      streams_.push_back(std::move(op));
      ++waiting;
      continue;
    }
    const size_t slot = freeChunks_.back();
    freeChunks_.pop_back();
    const size_t length = std::min(opts_.chunkBytes, op->bytes - op->streamed);
    if (op->copyTo) copyToSlotAndLocal(poolSlot(slot), op->copyTo + op->streamed, op->data + op->streamed, length);
    else std::memcpy(poolSlot(slot), op->data + op->streamed, length);
    chunkPeer_[slot] = op->peer;
    ++chunksHeld_[op->peer];
    // Once all of it is in the pool and the last chunk's record in the receiver's ring, the send
    // is complete: the buffer is the caller's again, and the message survives our going away.
    const bool last = op->streamed + length == op->bytes;
    const bool written = emit(op->peer, {kChunk, last ? op : nullptr, op->id, op->streamed, length, slot});
    op->streamed += length;
    if (!last) streams_.push_back(std::move(op));
    else if (written) op->req->complete();  // (else once the backlog has written it)
    waiting = 0;
    moved = true;
  }
  return moved;
}

// A chunk of a peer's message we pull is in its pool: copy it out and hand the slot back. The
// sender streams each message in order, whole chunks but the last: anything else is refused.
void ShmTransport::onChunk(int peer, ChunkRecord c) {
  Peer& p = peers_[peer];
  auto it = p.pulling.find(c.sendId);
  const bool fits = it != p.pulling.end() && c.slot < p.poolSlots && c.offset == it->second.received &&
                    c.length <= it->second.bytes - c.offset && (c.length == p.chunkBytes || c.length == it->second.bytes - c.offset);
  if (!fits || c.length == 0) {
    breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(peer) + " sent a chunk (slot " + std::to_string(c.slot) + ", " +
                                          std::to_string(c.length) + " bytes at " + std::to_string(c.offset) +
                                          ") that is not the next one of a message being pulled",
                true);
    return;
  }
  Pulling& pull = it->second;
  if (pull.op) std::memcpy(pull.op->data + c.offset, p.pool + c.slot * p.chunkBytes, c.length);
  emit(peer, {kFreed, nullptr, 0, 0, 0, c.slot});
  pull.received += c.length;
  if (pull.received < pull.bytes) return;
  if (pull.op) pull.op->req->complete();
  p.pulling.erase(it);
  emit(peer, {kDone, nullptr, c.sendId});
}

// The receiver copied a chunk out: the slot is ours again.
void ShmTransport::onFreed(int peer, uint64_t slot) {
  if (slot >= chunkPeer_.size() || chunkPeer_[slot] != peer) {
    breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(peer) + " handed back pool slot " + std::to_string(slot) +
                                          ", which holds no chunk of ours for it",
                true);
    return;
  }
  releaseChunk(slot);
}

void ShmTransport::releaseChunk(size_t slot) {
  --chunksHeld_[chunkPeer_[slot]];
  chunkPeer_[slot] = -1;
  freeChunks_.push_back(slot);
}

// A receive being pulled was cancelled: the rest of its chunks are dropped as they come.
void ShmTransport::cancelPull(int peer, const RecvOp& op) {
  auto it = peers_[peer].pulling.find(op.pullId);
  if (it != peers_[peer].pulling.end() && it->second.op.get() == &op) it->second.op = nullptr;
}

// `peer` failed or left: what we pull from it fails, our sends to it stop streaming, and our
// slots holding its chunks come back (it reads none of them any more).
void ShmTransport::failPulls(int peer, ErrorCode code, const std::string& why) {
  Peer& p = peers_[peer];
  for (auto& [id, pull] : p.pulling)
    if (pull.op) pull.op->req->fail(code, pull.op->req->what() + " failed: " + why);
  p.pulling.clear();
  std::erase_if(streams_, [peer](const std::shared_ptr<SendOp>& s) { return s->peer == peer; });
  for (size_t s = 0; s < chunkPeer_.size(); ++s)
    if (chunkPeer_[s] == peer) releaseChunk(s);
}

}  // namespace eccl::transport::shm
