#include "transport/socket/socket_transport.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/socket/socket.h"
#include "transport/argument_checks.h"
#include "transport/socket/socket_connector.h"
#include "transport/socket/socket_transport_impl.h"

namespace eccl::transport {
namespace sockets {

// The identity is checked before anything is sized by it.
static GroupIdentity checkedIdentity(GroupIdentity id) {
  if (id.size <= 0 || id.rank < 0 || id.rank >= id.size)
    throw Error(ErrorCode::kInvalidArgument, "bad group identity: rank " + std::to_string(id.rank) + " of " + std::to_string(id.size));
  return id;
}

SocketTransport::SocketTransport(GroupIdentity id, SocketOptions opts)
    : id_(checkedIdentity(std::move(id))), opts_(std::move(opts)), matcher_(id_.size, opts_.unexpectedBudget) {
  if (opts_.host.empty()) throw Error(ErrorCode::kInvalidArgument, "socket transport needs a host address to listen on");
  nsocks_ = opts_.nsocks > 0 ? opts_.nsocks : static_cast<int>(envInt("ECCL_SOCKET_NSOCKS", 2));
  if (nsocks_ < 1 || nsocks_ > 64) throw Error(ErrorCode::kInvalidArgument, "ECCL_SOCKET_NSOCKS must be 1..64, got " + std::to_string(nsocks_));
  rendezvousBytes_ = static_cast<size_t>(opts_.rendezvousBytes >= 0 ? opts_.rendezvousBytes
                                                                     : envInt("ECCL_SOCKET_RENDEZVOUS_BYTES", 64 * 1024));
  long long buffer = opts_.bufferBytes >= 0 ? opts_.bufferBytes : envInt("ECCL_SOCKET_BUFFER_BYTES", -1);
  bufferEverywhere_ = buffer >= 0;  // set by the user: for every connection
  if (buffer < 0) buffer = 1 << 20;
  // (Below 64 KiB, loopback TCP stalls on window updates: a 4 MiB message took 38 s with 4 KiB.)
  if (buffer != 0 && (buffer < 65536 || buffer > (1 << 30)))
    throw Error(ErrorCode::kInvalidArgument, "socket buffer size (SocketOptions::bufferBytes or ECCL_SOCKET_BUFFER_BYTES) must be 0 (the kernel's "
                                             "autotuning) or 64 KiB to 1 GiB, got " + std::to_string(buffer));
  bufferBytes_ = static_cast<int>(buffer);
  listener_ = listenTcp(SocketAddress::resolve(opts_.host, 0), 1024);
  listenAddr_ = SocketAddress::ofSocket(listener_.get());
  epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
  wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_ || !wake_) throwSystemError("socket transport epoll/eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  peers_.resize(id_.size);
  peers_[id_.rank].address = listenAddr_.str();
  updateNames();
  progress_ = std::make_shared<CallerProgress>([this] { return pollOnce(); });
  thread_ = std::thread([this] {
    nameThisThread("eccl-sock");
    progressLoop();
  });
}

SocketTransport::~SocketTransport() {
  progress_->detach();  // from here on only the progress thread moves bytes
  // A healthy transport says goodbye first, so peers still finishing an operation with others
  // do not mistake our hang-up for a crash; the progress thread drains the queues. Peers that
  // already said goodbye get ours too: they may still be reading, in their own destructor.
  {
    std::lock_guard lock(mu_);
    leaving_ = true;
    // On every connection: hang-ups are seen per connection, in no particular order.
    if (connected_ && !broken_)
      for (auto& [id, c] : conns_)
        if (!c->dead) {
          OutChunk bye;
          wire::encode(wire::ChunkHeader{wire::kBye, 0, 0, 0, 0, 0}, bye.header);
          c->sendq.push_back(std::move(bye));
          flush(*c);
        }
  }
  for (auto until = Clock::now() + std::chrono::seconds(2); Clock::now() < until;) {
    {
      std::lock_guard lock(mu_);
      bool drained = true;
      for (auto& [id, c] : conns_) drained &= c->dead || c->sendq.empty();
      if (drained) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + ": the transport was destroyed", false);
}

void SocketTransport::connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) {
  if (static_cast<int>(addresses.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect got " + std::to_string(addresses.size()) +
                                                 " addresses for a group of " + std::to_string(id_.size));
  {
    std::lock_guard lock(mu_);
    if (connected_) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect called twice");
    for (int r = 0; r < id_.size; ++r) peers_[r].address = std::string(addresses[r].begin(), addresses[r].end());
    updateNames();
  }
  std::vector<std::string> names;
  for (auto& p : peers_) names.push_back(p.address);
  auto sockets = establishConnections(id_, names, nsocks_, listener_.get(), deadline, giveUp);
  for (auto& s : sockets)
    if (bufferBytes_ > 0 && (bufferEverywhere_ || staysOnThisMachine(s.fd.get()))) setBufferBytes(s.fd.get(), bufferBytes_);
  // Ranks of this host, for the oversubscription check: peers whose connection never leaves the
  // machine, and peers another transport carries (an empty address: the routed transport hands
  // only same-host pairs to shared memory).
  std::vector<bool> local(id_.size, false);
  for (int r = 0; r < id_.size; ++r) local[r] = r == id_.rank || peers_[r].address.empty();
  for (auto& s : sockets)
    if (staysOnThisMachine(s.fd.get())) local[s.peer] = true;
  progress_->setRanksOnHost(static_cast<int>(std::count(local.begin(), local.end(), true)));
  std::lock_guard lock(mu_);
  uint64_t nextId = 1;
  for (auto& s : sockets) {
    auto c = std::make_unique<Conn>();
    c->fd = std::move(s.fd);
    c->peer = s.peer;
    c->id = nextId++;
    peers_[c->peer].conns.push_back(c.get());
    setEvents(*c);
    conns_.emplace(c->id, std::move(c));
  }
  connected_ = true;
  logger().debug("{}: connected to {} peers over {} socket(s) each", id_.describe(), id_.size - 1, nsocks_);
}

// Under mu_ (or before the progress thread starts): the names requests use in their errors.
void SocketTransport::updateNames() {
  auto n = std::make_shared<RequestLabel::Names>();
  n->group = id_.describe();
  for (int r = 0; r < id_.size; ++r) n->peers.push_back(peerName(r));
  names_ = std::move(n);
}

// Under mu_: false (and the request failed) when the transport is broken.
bool SocketTransport::admit(RequestState& req, int peer) {
  if (broken_) {
    req.fail(brokenCode_, req.what() + " failed: " + *broken_);
    return false;
  }
  if (!connected_ && peer != id_.rank) throw Error(ErrorCode::kInvalidArgument, req.what() + ": connect() has not completed");
  if (peer != id_.rank && peers_[peer].conns.empty() && peers_[peer].address.empty())
    throw Error(ErrorCode::kInvalidArgument, req.what() + ": rank " + std::to_string(peer) + " is not connected through this transport");
  return true;
}

// A send to oneself meets its receive: a local copy.
void SocketTransport::matchSelf(SendOp& s, RecvOp& r) {
  completeLocalMatch(*s.req, s.data, s.bytes, *r.req, r.data, r.bytes);
}

RequestPtr SocketTransport::isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "send", data, bytes, region);
  std::lock_guard lock(mu_);
  auto req = std::make_shared<RequestState>(RequestLabel{names_, RequestLabel::Op::kSend, bytes, peer, tag}, progress_);
  auto op = std::make_shared<SendOp>();
  op->req = req;
  op->data = static_cast<const uint8_t*>(data);
  op->bytes = bytes;
  if (!admit(*req, peer)) return req;
  if (peer != id_.rank && bytes >= rendezvousBytes_) {
    // Its receive's go-ahead is often in the socket already (the peer posted it first, as a
    // collective's ranks do): read what has come, rather than announce the message and wait a
    // round trip for an answer that is here. Before the send is numbered: a go-ahead for a
    // numbered send counts as one for a message already sent.
    readArrived();
    if (!admit(*req, peer)) return req;
  }
  Peer& p = peers_[peer];
  const Key key = matcher_.numberSend(peer, tag);
  req->setCanceller([this, weak = std::weak_ptr<SendOp>(op)] {  // weak: op owns req
    std::lock_guard l(mu_);
    if (auto op = weak.lock()) cancelSend(op);
  });
  if (peer == id_.rank) {
    if (auto r = matcher_.unpost(peer, key)) matchSelf(*op, *r);
    else if (matcher_.receiveNumbered(peer, key)) req->complete();  // its receive was cancelled: dropped
    else p.selfSends.emplace(key, op);
    return req;
  }
  if (p.departed) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
    return req;
  }
  const bool granted = p.clearToSend.erase(key) > 0;  // (a CTS for a small message is just dropped)
  if (bytes < rendezvousBytes_ || granted) {
    queueData(peer, op, key, granted);
  } else {
    p.awaitingCts.emplace(key, op);
    queueControl(peer, wire::kReadyToSend, key, bytes);
  }
  return req;
}

// Queues the message's chunks: striped over the peer's sockets when large.
void SocketTransport::queueData(int peer, const std::shared_ptr<SendOp>& op, Key key, bool granted, uint16_t type) {
  Peer& p = peers_[peer];
  const size_t bytes = op->bytes;
  // Striped over the sockets when large; chunks stay under 4 GiB (their length is 32 bits).
  const size_t stripes = (bytes >= opts_.stripeMinBytes && p.conns.size() > 1) ? p.conns.size() : 1;
  const size_t n = std::max(stripes, (bytes + kMaxChunkBytes - 1) / kMaxChunkBytes);
  const size_t per = n == 1 ? bytes : (bytes + n - 1) / n;
  op->chunksLeft = static_cast<int>(n);
  for (size_t i = 0; i < n; ++i) {
    Conn* c = n > 1 ? p.conns[i % p.conns.size()] : p.conns[p.roundRobin++ % p.conns.size()];
    OutChunk chunk;
    chunk.op = op;
    chunk.offset = std::min(bytes, per * i);
    chunk.len = static_cast<uint32_t>(std::min(per, bytes - chunk.offset));
    wire::ChunkHeader h{type, key.tag, key.seq, bytes, chunk.offset, chunk.len};
    h.flags = granted ? wire::kGranted : 0;
    wire::encode(h, chunk.header);
    c->sendq.push_back(std::move(chunk));
    if (c->sendq.size() == 1) flush(*c);  // nothing queued ahead: write straight from this thread
    if (broken_) break;
  }
}

RequestPtr SocketTransport::irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "receive", data, bytes, region);
  std::lock_guard lock(mu_);
  auto req = std::make_shared<RequestState>(RequestLabel{names_, RequestLabel::Op::kRecv, bytes, peer, tag}, progress_);
  auto op = std::make_shared<RecvOp>();
  op->req = req;
  op->data = static_cast<uint8_t*>(data);
  op->bytes = bytes;
  if (!admit(*req, peer)) return req;
  Peer& p = peers_[peer];
  op->key = matcher_.numberReceive(peer, tag);
  req->setCanceller([this, peer, weak = std::weak_ptr<RecvOp>(op)] {  // weak: op owns req
    std::lock_guard l(mu_);
    if (auto op = weak.lock()) cancelRecv(peer, op);
  });
  if (peer == id_.rank) {
    auto it = p.selfSends.find(op->key);
    if (it == p.selfSends.end()) {
      matcher_.post(peer, op->key, op);
      return req;
    }
    auto s = it->second;
    p.selfSends.erase(it);
    matchSelf(*s, *op);
    return req;
  }
  if (matcher_.unexpected(peer, op->key)) {
    matchUnexpected(peer, op);
  } else if (p.departed && std::all_of(p.conns.begin(), p.conns.end(), [](Conn* c) { return c->dead; })) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
  } else {
    matcher_.post(peer, op->key, op);
    // Large: tell the sender now, so its data never waits for a round trip once it posts.
    // Announced: the sender waits for exactly this (a size mismatch shows when its data comes).
    if (bytes >= rendezvousBytes_ || p.announced.erase(op->key)) grant(peer, *op);
    resumePaused(peer);
  }
  return req;
}

void SocketTransport::cancelSend(const std::shared_ptr<SendOp>& op) {
  // The message is already part of the stream (its sequence number is taken): it is still
  // delivered, from a private copy, so the caller may reuse the buffer and the peer's matching
  // stays intact.
  if (op->req->test() || !op->owned.empty() || op->bytes == 0) return;
  op->owned.assign(op->data, op->data + op->bytes);
  op->data = op->owned.data();
}

// A connection ended without a goodbye: the peer crashed, unless we are leaving ourselves (a
// peer that saw our goodbye may hang up without one, and nobody waits on us any more).
void SocketTransport::connectionLost(Conn& c, const std::string& why) {
  c.dead = true;
  setEvents(c);
  if (leaving_) return peerLeft(c.peer);
  breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": " + peerName(c.peer) + " " + why, true);
}

void SocketTransport::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + " aborted: " + reason, true);
}

// Fails everything pending and everything later. With tellPeers, an abort chunk carrying the
// reason goes on every connection, after any chunk that is half on the wire (finished from a
// private copy). A lost peer is relayed this way too, so ranks that learn of it from us rather
// than from their own connection still hear which rank was lost, not that we hung up.
void SocketTransport::breakLocked(ErrorCode code, const std::string& reason, bool tellPeers) {
  if (broken_) return;
  broken_ = reason;
  brokenCode_ = code;
  bool pending = false;
  notifyBroken(code, reason);
  for (auto& [id, c] : conns_) {
    std::deque<OutChunk> keep;
    for (auto& ch : c->sendq) {
      if (ch.op && !ch.op->req->test()) {
        pending = true;
        ch.op->req->fail(code, ch.op->req->what() + " failed: " + reason);
      }
      if (ch.sent > 0 && ch.sent < wire::kChunkHeaderBytes + ch.len) {
        if (ch.op && ch.op->owned.empty() && ch.op->bytes) {
          ch.op->owned.assign(ch.op->data, ch.op->data + ch.op->bytes);
          ch.op->data = ch.op->owned.data();
        }
        keep.push_back(std::move(ch));
      }
    }
    c->sendq.swap(keep);
    if (tellPeers && !c->dead) {  // on every socket: each must show the reason before its hang-up
      OutChunk a;
      a.control.assign(reason.begin(), reason.begin() + std::min<size_t>(reason.size(), wire::kMaxAbortReason));
      a.len = static_cast<uint32_t>(a.control.size());
      wire::encode(wire::ChunkHeader{wire::kAbort, 0, 0, a.len, 0, a.len}, a.header);
      c->sendq.push_back(std::move(a));
    }
    flush(*c);
  }
  for (int peer = 0; peer < id_.size; ++peer) {
    Peer& p = peers_[peer];
    pending |= matcher_.anyPosted(peer) || !p.selfSends.empty();
    for (auto& r : matcher_.takeWaiting(peer)) r->req->fail(code, r->req->what() + " failed: " + reason);
    for (auto& [k, s] : p.selfSends) s->req->fail(code, s->req->what() + " failed: " + reason);
    for (auto& [k, s] : p.awaitingCts) s->req->fail(code, s->req->what() + " failed: " + reason);
    for (auto& [k, r] : p.reads) r->req->fail(code, r->req->what() + " failed: " + reason);
    pending |= !p.awaitingCts.empty() || !p.reads.empty();
    p.reads.clear();
    p.selfSends.clear();
    p.awaitingCts.clear();
    // A payload being read into a receive's buffer goes to scratch from here on: the caller may
    // free the buffer as soon as it sees the failure.
    for (Conn* c : p.conns)
      if (c->target) {
        c->target->req->fail(code, c->target->req->what() + " failed: " + reason);
        c->target = nullptr;
        if (c->sink == Conn::Sink::kRecv) c->sink = Conn::Sink::kDiscard;
      }
  }
  // An abort or a lost peer that cost operations is worth a warning; a quiet teardown is not.
  if (pending || tellPeers) logger().warn("{}", reason);
  else logger().debug("{}", reason);
}

void SocketTransport::setEvents(Conn& c) {
  if (c.dead) {  // it would only report the hang-up again
    if (c.events != 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
    c.events = 0;
    return;
  }
  uint32_t want = EPOLLRDHUP;
  if (!c.paused) want |= EPOLLIN;
  if (!c.sendq.empty()) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  ::epoll_ctl(epoll_.get(), c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd.get(), &ev);
  c.events = want;
}

void SocketTransport::flush(Conn& c) {
  while (!c.sendq.empty()) {
    OutChunk& ch = c.sendq.front();
    iovec iov[2];
    int n = 0;
    if (ch.sent < wire::kChunkHeaderBytes) iov[n++] = {ch.header + ch.sent, wire::kChunkHeaderBytes - ch.sent};
    size_t paySent = ch.sent > wire::kChunkHeaderBytes ? ch.sent - wire::kChunkHeaderBytes : 0;
    if (paySent < ch.len) iov[n++] = {const_cast<uint8_t*>(ch.payload()) + paySent, ch.len - paySent};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t w = n ? ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      int err = errno;
      c.sendq.clear();
      if (peers_[c.peer].departed) {
        c.dead = true;
        setEvents(c);
        return peerLeft(c.peer);
      }
      return connectionLost(c, std::string("broke the connection while we were sending: ") + std::strerror(err));
    }
    ch.sent += static_cast<size_t>(w);
    if (ch.sent < wire::kChunkHeaderBytes + ch.len) break;
    std::shared_ptr<SendOp> op = std::move(ch.op);
    c.sendq.pop_front();
    if (op && --op->chunksLeft == 0) op->req->complete();  // no-op if cancelled or failed already
  }
  setEvents(c);
}

void SocketTransport::onEvent(Conn& c, uint32_t events) {
  if (events & EPOLLOUT) flush(c);
  if (c.dead) return;
  if (c.paused && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
    // Paused, so we cannot read on to the end of the stream: the peer is gone mid-message.
    return connectionLost(c, "closed its connection (did the process exit?)");
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readFrom(c);
}

// Under mu_: handles what epoll reported; true if any connection had an event.
bool SocketTransport::handleEvents(const epoll_event* events, int n) {
  bool any = false;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kWakeId) continue;  // the progress thread's own stop signal
    auto it = conns_.find(events[i].data.u64);
    if (it == conns_.end()) continue;
    onEvent(*it->second, events[i].events);
    any = true;
  }
  return any;
}

// Under mu_: handles whatever the sockets hold now, without waiting.
void SocketTransport::readArrived() {
  epoll_event events[64];
  const int n = ::epoll_wait(epoll_.get(), events, 64, 0);
  if (n > 0) handleEvents(events, n);
}

// A waiting thread's turn at the sockets (see CallerProgress). Never blocks: when the progress
// thread or a caller holds the lock, it is moving these bytes already.
bool SocketTransport::pollOnce() {
  epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, 0);
  if (n <= 0) return false;
  std::unique_lock lock(mu_, std::try_to_lock);
  return lock && handleEvents(events, n);
}

void SocketTransport::progressLoop() {
  epoll_event events[64];
  while (!stop_.load()) {
    if (progress_->standAside()) continue;  // waiters are polling (see CallerProgress)
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      logger().error("{}: epoll_wait failed: {}", id_.describe(), std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i)
      if (events[i].data.u64 == kWakeId) {
        uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof(v));
      }
    if (progress_->spinning(std::chrono::microseconds(0))) continue;  // a waiter is at them now
    std::lock_guard lock(mu_);
    handleEvents(events, n);
  }
}

}  // namespace sockets

std::unique_ptr<Transport> createSocketTransport(GroupIdentity identity, SocketOptions options) {
  return std::make_unique<sockets::SocketTransport>(std::move(identity), std::move(options));
}

}  // namespace eccl::transport
