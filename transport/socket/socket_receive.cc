// The receive side of the socket transport: reading chunk headers and payloads, deciding where
// each payload goes (a posted receive, staging, or discard), matching staged data to receives,
// cancelling receives, and peers that leave.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/logging.h"
#include "transport/socket/socket_transport_impl.h"

namespace eccl::transport::sockets {

// A receive posted for data that (partly) arrived already: copy it now or when it completes.
void SocketTransport::matchUnexpected(int peer, const std::shared_ptr<RecvOp>& op) {
  Matcher::Unexpected& u = *matcher_.unexpected(peer, op->key);
  if (u.data.size() != op->bytes) {
    op->req->fail(ErrorCode::kInvalidArgument, op->req->what() + ": " + peerName(peer) + " sent " + std::to_string(u.data.size()) +
                                                   " bytes for this message (size mismatch)");
    // Its receive is gone: drop the message once it is whole.
    if (matcher_.withdraw(peer, op->key)) resumePaused(-1);  // budget may be freed
    return;
  }
  if (!u.complete()) {
    u.waiter = op;  // finished by chunkDone
    return;
  }
  if (op->bytes) std::memcpy(op->data, u.data.data(), op->bytes);
  matcher_.release(peer, op->key);
  op->req->complete();
  resumePaused(-1);  // budget freed
}

void SocketTransport::cancelRecv(int peer, const std::shared_ptr<RecvOp>& op) {
  if (op->req->test()) return;
  Peer& p = peers_[peer];
  if (matcher_.withdraw(peer, op->key)) {
    resumePaused(-1);  // budget may be freed
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
  for (auto& r : matcher_.takeWaiting(peer)) r->req->fail(ErrorCode::kConnectionClosed, r->req->what() + " failed: " + why);
  for (auto& [k, s] : p.awaitingCts) s->req->fail(ErrorCode::kConnectionClosed, s->req->what() + " failed: " + why);
  p.awaitingCts.clear();
  for (auto& [k, r] : p.reads) r->req->fail(ErrorCode::kConnectionClosed, r->req->what() + " failed: " + why);
  p.reads.clear();
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
      if (c->inEnd > c->inStart) readFrom(*c);  // already read off the socket: no event will come for it
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
  c.sink = Conn::Sink::kDiscard;
  if (h.type == wire::kReadRequest) {
    onReadRequest(c.peer, h.tag, h.seq, h.offset, h.total);
    return true;
  }
  if (h.type == wire::kReadReply || h.type == wire::kReadRefused) {
    auto it = p.reads.find(h.tag);
    if (it == p.reads.end()) return true;  // a cancelled read: its reply is dropped
    c.target = it->second;
    if (h.type == wire::kReadRefused) {
      c.reason.resize(std::min<size_t>(h.len, wire::kMaxAbortReason));
      c.sink = h.len <= wire::kMaxAbortReason ? Conn::Sink::kReadRefusal : Conn::Sink::kDiscard;
      c.dest = c.reason.data();
    } else if (h.total == c.target->bytes) {
      c.sink = Conn::Sink::kRecv;
      c.dest = c.target->data + h.offset;
    } else {
      c.target->req->fail(ErrorCode::kProtocol, c.target->req->what() + ": " + peerName(c.peer) + " replied with " +
                                                    std::to_string(h.total) + " bytes");
      p.reads.erase(it);
      c.target = nullptr;
    }
    return true;
  }
  if (h.type == wire::kReadyToSend) {
    onReadyToSend(c.peer, key, h.total);
    return true;
  }
  if (h.type == wire::kClearToSend) {
    onClearToSend(c.peer, key);
    return true;
  }
  // Granted (rendezvous) data was sent because its receive is posted; if that receive has been
  // withdrawn meanwhile the data is dropped, never staged.
  const bool granted = h.flags & wire::kGranted;
  if (auto d = p.discarding.find(key); d != p.discarding.end()) {
    if (granted) p.discarding.erase(d);  // the count was for eager chunks; later granted ones drop anyway
    else if ((d->second -= std::min<uint64_t>(d->second, h.len)) == 0) p.discarding.erase(d);
    return true;
  }
  if (auto* posted = matcher_.posted(c.peer, key)) {
    auto op = *posted;
    if (op->bytes != h.total) {
      op->req->fail(ErrorCode::kInvalidArgument, op->req->what() + ": " + peerName(c.peer) + " sent " +
                                                     std::to_string(h.total) + " bytes for this message (size mismatch)");
      matcher_.unpost(c.peer, key);
      if (!granted && h.total > h.len) p.discarding[key] = h.total - h.len;  // its other chunks
      return true;
    }
    c.sink = Conn::Sink::kRecv;
    c.target = op;
    c.dest = op->data + h.offset;
    return true;
  }
  if (granted) return true;
  Matcher::Unexpected* u = matcher_.reserve(c.peer, key, h.total);
  if (!u) return false;  // over the budget: wait for a receive
  c.sink = Conn::Sink::kStaged;
  c.dest = u->data.data() + h.offset;
  return true;
}

void SocketTransport::chunkDone(Conn& c) {
  Peer& p = peers_[c.peer];
  const wire::ChunkHeader& h = c.h;
  Key key{h.tag, h.seq};
  switch (c.sink) {
    case Conn::Sink::kRecv:
      if (c.target && (c.target->received += h.len) == c.target->bytes) {
        if (h.type == wire::kReadReply) p.reads.erase(h.tag);
        else matcher_.unpost(c.peer, key);
        c.target->req->complete();
      }
      break;
    case Conn::Sink::kReadRefusal:
      if (c.target) {
        p.reads.erase(h.tag);
        c.target->req->fail(ErrorCode::kRemote, c.target->req->what() + " refused by " + peerName(c.peer) + ": " +
                                                    std::string(c.reason.begin(), c.reason.end()));
      }
      break;
    case Conn::Sink::kStaged: {
      Matcher::Unexpected* u = matcher_.unexpected(c.peer, key);
      if (!u || (u->received += h.len) < u->data.size()) break;
      if (u->orphan) {
        matcher_.release(c.peer, key);
        resumePaused(-1);
      } else if (u->waiter) {
        matchUnexpected(c.peer, std::exchange(u->waiter, nullptr));
      }
      break;
    }
    case Conn::Sink::kAbortReason:  // relayed, as a lost peer is (see SideChannel::Break)
      breakLocked(ErrorCode::kAborted, id_.describe() + ": " + peerName(c.peer) + " aborted the group: " +
                                           std::string(c.reason.begin(), c.reason.end()), true);
      break;
    case Conn::Sink::kDiscard:
      break;
  }
  c.target = nullptr;
  c.inPayload = false;
}

// Reads and dispatches what the socket has, until it is drained (a recv came back short; the
// epoll is level-triggered, so a wrong guess only costs a wake-up), the connection pauses, or
// the read budget is spent. Bytes already in `c.in` are always dispatched: no event would come
// for them.
void SocketTransport::readFrom(Conn& c) {
  size_t budget = kReadBudgetPerEvent;
  bool drained = false;
  while (!c.paused && !c.dead) {
    const size_t buffered = c.inEnd - c.inStart;
    if (c.inPayload && c.left == 0) {
      chunkDone(c);
    } else if (c.inPayload && buffered > 0) {
      const size_t k = std::min(buffered, c.left);
      if (c.sink != Conn::Sink::kDiscard) {
        std::memcpy(c.dest, c.in.data() + c.inStart, k);
        c.dest += k;
      }
      c.inStart += k;
      c.left -= k;
    } else if (!c.inPayload && buffered >= wire::kChunkHeaderBytes) {
      if (!wire::decode(c.in.data() + c.inStart, c.h)) {
        c.dead = true;
        setEvents(c);
        breakLocked(ErrorCode::kProtocol, id_.describe() + ": " + peerName(c.peer) + " sent a malformed chunk header", true);
        return;
      }
      c.inStart += wire::kChunkHeaderBytes;
      c.inPayload = true;
      if (!route(c)) {
        c.paused = true;  // resumed by irecv or freed budget
        setEvents(c);
      }
    } else if (drained || budget == 0) {
      return;
    } else if (!receive(c, budget, drained)) {
      return;
    }
  }
}

// One recv: a large payload straight into its destination (or scratch when discarding), else
// into `c.in`. False when the connection ended (handled here) or has nothing now.
bool SocketTransport::receive(Conn& c, size_t& budget, bool& drained) {
  uint8_t* into;
  size_t want;
  const bool direct = c.inPayload && c.left >= kInBufferBytes;
  if (direct) {
    into = c.sink == Conn::Sink::kDiscard ? scratch_.data() : c.dest;
    want = c.sink == Conn::Sink::kDiscard ? std::min(c.left, scratch_.size()) : c.left;
  } else {
    if (c.inStart == c.inEnd) c.inStart = c.inEnd = 0;
    if (c.inStart > 0) {  // keep a partial header at the front
      std::memmove(c.in.data(), c.in.data() + c.inStart, c.inEnd - c.inStart);
      c.inEnd -= c.inStart;
      c.inStart = 0;
    }
    into = c.in.data() + c.inEnd;
    want = c.in.size() - c.inEnd;
  }
  ssize_t n = ::recv(c.fd.get(), into, want, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
  if (n <= 0) {
    if (c.byeSeen && !c.inPayload && c.inStart == c.inEnd) {
      c.dead = true;
      setEvents(c);
      // Gone once every socket has ended: a striped message may still be arriving on another.
      for (Conn* o : peers_[c.peer].conns)
        if (!o->dead) return false;
      peerLeft(c.peer);
      return false;
    }
    connectionLost(c, std::string("closed its connection (did the process exit?)") +
                          (n == 0 ? "" : std::string(": ") + std::strerror(errno)));
    return false;
  }
  drained = static_cast<size_t>(n) < want;
  budget -= std::min(budget, static_cast<size_t>(n));
  if (!direct) {
    c.inEnd += n;
  } else {
    if (c.sink != Conn::Sink::kDiscard) c.dest += n;
    c.left -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace eccl::transport::sockets
