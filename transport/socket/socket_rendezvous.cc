// Rendezvous for large messages (see socket_wire.h): the sender's RTS, the receiver's CTS, and
// the control chunks that carry them.
#include "transport/socket/socket_transport_impl.h"

namespace eccl::transport::sockets {

// Control chunks jump the queue (behind a chunk already half on the wire): a CTS stuck behind
// megabytes of data would idle the peer's sender meanwhile. Chunks of different messages may be
// reordered freely; the receiver matches by (tag, seq).
Conn* SocketTransport::leastLoadedConn(int peer) {
  Conn* c = nullptr;
  for (Conn* o : peers_[peer].conns)
    if (!o->dead && (!c || o->sendq.size() < c->sendq.size())) c = o;
  return c;
}

void SocketTransport::queueControl(int peer, uint16_t type, Key key, uint64_t total) {
  Conn* c = leastLoadedConn(peer);
  if (!c) return;  // the peer hung up after saying goodbye; peerLeft fails what waited for it
  OutChunk chunk;
  wire::encode(wire::ChunkHeader{type, key.tag, key.seq, total, 0, 0}, chunk.header);
  auto at = c->sendq.begin();
  if (at != c->sendq.end() && at->sent > 0) ++at;
  c->sendq.insert(at, std::move(chunk));
  flush(*c);
}

// The receive `op` is posted: let the sender go ahead.
void SocketTransport::grant(int peer, RecvOp& op) {
  op.granted = true;
  queueControl(peer, wire::kClearToSend, op.key, 0);
}

// Receiving side: the peer has a large message for `key` and waits for our CTS.
void SocketTransport::onReadyToSend(int peer, Key key, uint64_t total) {
  Peer& p = peers_[peer];
  if (auto* r = matcher_.posted(peer, key)) {
    if (!(*r)->granted) grant(peer, **r);  // a small receive: the sizes disagree
    return;
  }
  if (matcher_.receiveNumbered(peer, key)) {
    // Its receive was posted and is gone (cancelled, or failed): let the data come and drop it,
    // so the sender finishes as it would have had it sent eagerly.
    queueControl(peer, wire::kClearToSend, key, 0);
    return;
  }
  p.announced.emplace(key, total);
}

// Sending side: the peer has a buffer for `key`.
void SocketTransport::onClearToSend(int peer, Key key) {
  Peer& p = peers_[peer];
  if (auto it = p.awaitingCts.find(key); it != p.awaitingCts.end()) {
    auto op = std::move(it->second);
    p.awaitingCts.erase(it);
    queueData(peer, op, key, true);
    return;
  }
  if (!matcher_.sendNumbered(peer, key)) p.clearToSend.insert(key);
  // else: for a message already sent (small, or a duplicate CTS)
}

}  // namespace eccl::transport::sockets
