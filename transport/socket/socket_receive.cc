// The receive side of the socket transport: reading chunk headers and payloads, deciding where
// each payload goes (a posted receive, staging, or discard), matching staged data to receives,
// cancelling receives, and peers that leave.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "transport/logging.h"
#include "transport/socket/socket_transport_impl.h"

namespace eccl::transport::sockets {

// A receive posted for data that (partly) arrived already: copy it now or when it completes.
void SocketTransport::matchStaged(Peer& p, const std::shared_ptr<RecvOp>& op) {
  auto it = p.staged.find(op->key);
  Staged& s = it->second;
  if (s.data.size() != op->bytes) {
    op->req->fail(ErrorCode::kInvalidArgument, op->req->what() + ": the peer sent " + std::to_string(s.data.size()) +
                                                   " bytes for this message");
    if (s.received == s.data.size()) {
      stagedBytes_ -= s.data.size();
      p.staged.erase(it);
    } else {
      s.waiter = nullptr;
    }
    return;
  }
  if (s.received < s.data.size()) {
    s.waiter = op;  // finished by chunkDone
    return;
  }
  if (op->bytes) std::memcpy(op->data, s.data.data(), op->bytes);
  stagedBytes_ -= s.data.size();
  p.staged.erase(it);
  op->req->complete();
  resumePaused(-1);  // budget freed
}

void SocketTransport::cancelRecv(int peer, const std::shared_ptr<RecvOp>& op) {
  if (op->req->test()) return;
  Peer& p = peers_[peer];
  p.posted.erase(op->key);
  if (auto st = p.staged.find(op->key); st != p.staged.end()) {
    st->second.waiter = nullptr;
    st->second.orphan = true;
    if (st->second.received == st->second.data.size()) {
      stagedBytes_ -= st->second.data.size();
      p.staged.erase(st);
    }
    return;
  }
  // Chunks being read into the caller's buffer now go to scratch; chunks not yet routed are
  // discarded as they come.
  uint64_t inFlight = 0;
  for (Conn* c : p.conns)
    if (c->inPayload && c->sink == Conn::Sink::kRecv && c->target == op) {
      c->sink = Conn::Sink::kDiscard;
      c->target = nullptr;
      inFlight += c->h.len;
    }
  if (peer != id_.rank && op->received + inFlight < op->bytes) p.discarding[op->key] = op->bytes - op->received - inFlight;
}

// A peer that said goodbye hung up: only what involves it fails.
void SocketTransport::peerLeft(int peer) {
  Peer& p = peers_[peer];
  const std::string why = peerName(peer) + " left the group (it destroyed its communicator)";
  for (auto& [k, r] : p.posted) r->req->fail(ErrorCode::kConnectionClosed, r->req->what() + " failed: " + why);
  p.posted.clear();
  for (auto& [k, s] : p.staged)
    if (s.waiter) s.waiter->req->fail(ErrorCode::kConnectionClosed, s.waiter->req->what() + " failed: " + why);
  for (Conn* c : p.conns) {
    for (auto& ch : c->sendq)
      if (ch.op) ch.op->req->fail(ErrorCode::kConnectionClosed, ch.op->req->what() + " failed: " + why);
    c->sendq.clear();
    c->dead = true;
    setEvents(*c);
  }
  logger().debug("{}: {}", id_.describe(), why);
}

void SocketTransport::resumePaused(int peer) {
  for (auto& [id, c] : conns_)
    if (c->paused && (peer < 0 || c->peer == peer) && route(*c)) {
      c->paused = false;
      setEvents(*c);
    }
}

// Decides where the payload of the chunk whose header was just read goes. False = pause.
bool SocketTransport::route(Conn& c) {
  Peer& p = peers_[c.peer];
  const wire::ChunkHeader& h = c.h;
  c.left = h.len;
  c.target = nullptr;
  if (h.type == wire::kBye) {
    p.departed = true;
    c.byeSeen = true;
    c.sink = Conn::Sink::kDiscard;
    return true;
  }
  if (h.type == wire::kAbort) {
    c.reason.resize(std::min<size_t>(h.len, wire::kMaxAbortReason));
    c.sink = h.len <= wire::kMaxAbortReason ? Conn::Sink::kAbortReason : Conn::Sink::kDiscard;
    c.dest = c.reason.data();
    return true;
  }
  Key key{h.tag, h.seq};
  if (auto d = p.discarding.find(key); d != p.discarding.end()) {
    c.sink = Conn::Sink::kDiscard;
    if ((d->second -= std::min<uint64_t>(d->second, h.len)) == 0) p.discarding.erase(d);
    return true;
  }
  if (auto it = p.posted.find(key); it != p.posted.end()) {
    auto op = it->second;
    if (op->bytes != h.total) {
      op->req->fail(ErrorCode::kInvalidArgument, op->req->what() + ": " + peerName(c.peer) + " sent " +
                                                     std::to_string(h.total) + " bytes for this message (size mismatch)");
      p.posted.erase(it);
      c.sink = Conn::Sink::kDiscard;
      if (h.total > h.len) p.discarding[key] = h.total - h.len;
      return true;
    }
    c.sink = Conn::Sink::kRecv;
    c.target = op;
    c.dest = op->data + h.offset;
    return true;
  }
  auto st = p.staged.find(key);
  if (st == p.staged.end()) {
    if (stagedBytes_ + h.total > opts_.unexpectedBudget && h.len > 0) return false;  // wait for a receive
    st = p.staged.emplace(key, Staged{}).first;
    st->second.data.resize(h.total);
    stagedBytes_ += h.total;
  }
  c.sink = Conn::Sink::kStaged;
  c.dest = st->second.data.data() + h.offset;
  return true;
}

void SocketTransport::chunkDone(Conn& c) {
  Peer& p = peers_[c.peer];
  const wire::ChunkHeader& h = c.h;
  Key key{h.tag, h.seq};
  switch (c.sink) {
    case Conn::Sink::kRecv:
      if (c.target && (c.target->received += h.len) == c.target->bytes) {
        p.posted.erase(key);
        c.target->req->complete();
      }
      break;
    case Conn::Sink::kStaged: {
      auto it = p.staged.find(key);
      if (it == p.staged.end() || (it->second.received += h.len) < it->second.data.size()) break;
      if (it->second.orphan) {
        stagedBytes_ -= it->second.data.size();
        p.staged.erase(it);
        resumePaused(-1);
      } else if (it->second.waiter) {
        auto op = it->second.waiter;
        it->second.waiter = nullptr;
        matchStaged(p, op);
      }
      break;
    }
    case Conn::Sink::kAbortReason:
      breakLocked(ErrorCode::kAborted, id_.describe() + ": " + peerName(c.peer) + " aborted the group: " +
                                           std::string(c.reason.begin(), c.reason.end()), false);
      break;
    case Conn::Sink::kDiscard:
      break;
  }
  c.target = nullptr;
  c.inPayload = false;
  c.hdrGot = 0;
}

void SocketTransport::readFrom(Conn& c) {
  size_t budget = kReadBudgetPerEvent;
  while (budget > 0 && !c.paused) {
    ssize_t n;
    if (!c.inPayload) {
      n = ::recv(c.fd.get(), c.hdr + c.hdrGot, wire::kChunkHeaderBytes - c.hdrGot, MSG_DONTWAIT);
    } else {
      uint8_t* into = c.sink == Conn::Sink::kDiscard ? scratch_.data() : c.dest;
      size_t want = c.sink == Conn::Sink::kDiscard ? std::min(c.left, scratch_.size()) : c.left;
      n = want ? ::recv(c.fd.get(), into, want, MSG_DONTWAIT) : 0;
      if (want == 0) {
        chunkDone(c);
        continue;
      }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      c.dead = true;
      setEvents(c);
      if (c.byeSeen && !c.inPayload && c.hdrGot == 0) {
        // Gone once every socket has ended: a striped message may still be arriving on another.
        for (Conn* o : peers_[c.peer].conns)
          if (!o->dead) return;
        return peerLeft(c.peer);
      }
      std::string why = std::string("closed its connection (did the process exit?)") + (n == 0 ? "" : std::string(": ") + std::strerror(errno));
      breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": " + peerName(c.peer) + " " + why, false);
      return;
    }
    if (n < 0) return;  // EAGAIN
    budget -= std::min(budget, static_cast<size_t>(n));
    if (!c.inPayload) {
      if ((c.hdrGot += n) < wire::kChunkHeaderBytes) continue;
      if (!wire::decode(c.hdr, c.h)) {
        c.dead = true;
        setEvents(c);
        breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(c.peer) + " sent a malformed chunk header", false);
        return;
      }
      c.inPayload = true;
      if (!route(c)) {
        c.paused = true;  // resumed by irecv or freed budget
        setEvents(c);
        return;
      }
      continue;
    }
    if (c.sink != Conn::Sink::kDiscard) c.dest += n;
    if ((c.left -= static_cast<size_t>(n)) == 0) chunkDone(c);
  }
}

}  // namespace eccl::transport::sockets
