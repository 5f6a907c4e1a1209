#include "transport/socket/socket_transport.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "transport/env.h"
#include "transport/logging.h"
#include "transport/request_state.h"
#include "transport/socket/socket.h"
#include "transport/socket/socket_connector.h"
#include "transport/socket/socket_wire.h"

namespace eccl::transport {
namespace {

using Key = std::pair<Tag, uint64_t>;
constexpr size_t kReadBudgetPerEvent = 8u << 20;  // then let other sockets have a turn
constexpr size_t kScratchBytes = 64 * 1024;
constexpr uint64_t kWakeId = ~uint64_t(0);

struct SendOp {
  std::shared_ptr<RequestState> req;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  std::vector<uint8_t> owned;  // a cancelled or aborted send finishes from this copy
  int chunksLeft = 0;
};

struct OutChunk {
  std::shared_ptr<SendOp> op;  // null for an abort chunk
  uint8_t header[wire::kChunkHeaderBytes];
  size_t offset = 0;  // of the payload within the message
  uint32_t len = 0;
  std::vector<uint8_t> control;  // abort reason
  size_t sent = 0;               // of header + payload
  const uint8_t* payload() const { return op ? op->data + offset : control.data(); }
};

struct RecvOp {
  std::shared_ptr<RequestState> req;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t received = 0;
  Key key;
};

// Data that arrived before its receive was posted.
struct Staged {
  std::vector<uint8_t> data;
  size_t received = 0;
  std::shared_ptr<RecvOp> waiter;  // a receive posted while chunks were still arriving
  bool orphan = false;             // its receive was cancelled: drop it once complete
};

struct Conn {
  Fd fd;
  int peer = -1;
  uint64_t id = 0;
  uint32_t events = 0;
  std::deque<OutChunk> sendq;
  // Receive side: header, then `left` payload bytes into dest (or into scratch when discarding).
  uint8_t hdr[wire::kChunkHeaderBytes];
  size_t hdrGot = 0;
  wire::ChunkHeader h;
  bool inPayload = false;
  bool paused = false;  // header read, nowhere to put the payload yet
  bool dead = false;    // the peer closed or broke this connection
  uint8_t* dest = nullptr;
  size_t left = 0;
  enum class Sink { kRecv, kStaged, kDiscard, kAbortReason } sink = Sink::kDiscard;
  std::shared_ptr<RecvOp> target;
  std::vector<uint8_t> reason;
};

struct Peer {
  std::string address;
  std::vector<Conn*> conns;
  std::unordered_map<Tag, uint64_t> sendSeq, recvSeq;
  std::map<Key, std::shared_ptr<RecvOp>> posted;
  std::map<Key, Staged> staged;
  std::map<Key, uint64_t> discarding;  // cancelled receives: bytes still expected
  uint64_t roundRobin = 0;
  bool departed = false;  // said goodbye: its hang-up ends only the operations that involve it
  // Sends to oneself wait here for their receive.
  std::map<Key, std::shared_ptr<SendOp>> selfSends;
};

class SocketTransport final : public Transport {
 public:
  SocketTransport(GroupIdentity id, SocketOptions opts);
  ~SocketTransport() override;

  const GroupIdentity& identity() const override { return id_; }
  AddressBlob address() const override {
    std::string a = listenAddr_.str();
    return AddressBlob(a.begin(), a.end());
  }
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline) override;
  RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes) override;
  RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes) override;
  MemoryRegion registerMemory(void* ptr, size_t bytes) override { return {ptr, bytes, 0}; }
  void deregisterMemory(const MemoryRegion&) override {}
  void abort(const std::string& reason) override;
  std::optional<std::string> asyncError() const override {
    std::lock_guard lock(mu_);
    return broken_;
  }
  std::string peerAddress(int peer) const override {
    return peer >= 0 && peer < id_.size ? peers_[peer].address : std::string("?");
  }

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  void checkPeer(int peer, const char* op, size_t bytes) const;
  bool admit(RequestState& req, int peer);
  void matchSelf(SendOp& s, RecvOp& r);
  void progressLoop();
  void onEvent(Conn& c, uint32_t events);
  void readFrom(Conn& c);
  bool route(Conn& c);
  void chunkDone(Conn& c);
  void flush(Conn& c);
  void setEvents(Conn& c);
  void resumePaused(int peer);
  void matchStaged(Peer& p, const std::shared_ptr<RecvOp>& op);
  void cancelSend(const std::shared_ptr<SendOp>& op);
  void cancelRecv(int peer, const std::shared_ptr<RecvOp>& op);
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  void peerLeft(int peer);

  GroupIdentity id_;
  SocketOptions opts_;
  int nsocks_;
  Fd listener_, epoll_, wake_;
  SocketAddress listenAddr_;
  mutable std::mutex mu_;
  std::vector<Peer> peers_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  size_t stagedBytes_ = 0;
  std::vector<uint8_t> scratch_ = std::vector<uint8_t>(kScratchBytes);
  std::atomic<bool> stop_{false};
  bool connected_ = false;
  std::thread thread_;
};

SocketTransport::SocketTransport(GroupIdentity id, SocketOptions opts) : id_(std::move(id)), opts_(std::move(opts)) {
  if (id_.size <= 0 || id_.rank < 0 || id_.rank >= id_.size)
    throw Error(ErrorCode::kInvalidArgument, "bad group identity: rank " + std::to_string(id_.rank) + " of " + std::to_string(id_.size));
  if (opts_.host.empty()) throw Error(ErrorCode::kInvalidArgument, "socket transport needs a host address to listen on");
  nsocks_ = opts_.nsocks > 0 ? opts_.nsocks : static_cast<int>(envInt("ECCL_SOCKET_NSOCKS", 2));
  if (nsocks_ < 1 || nsocks_ > 64) throw Error(ErrorCode::kInvalidArgument, "ECCL_SOCKET_NSOCKS must be 1..64, got " + std::to_string(nsocks_));
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
  thread_ = std::thread([this] { progressLoop(); });
}

SocketTransport::~SocketTransport() {
  // A healthy transport says goodbye first, so peers still finishing an operation with others
  // do not mistake our hang-up for a crash; the progress thread drains the queues.
  {
    std::lock_guard lock(mu_);
    if (connected_ && !broken_)
      for (auto& p : peers_)
        if (!p.conns.empty() && !p.departed && !p.conns.front()->dead) {
          Conn& c = *p.conns.front();
          OutChunk bye;
          wire::encode(wire::ChunkHeader{wire::kBye, 0, 0, 0, 0, 0}, bye.header);
          c.sendq.push_back(std::move(bye));
          flush(c);
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

void SocketTransport::connect(const std::vector<AddressBlob>& addresses, Deadline deadline) {
  if (static_cast<int>(addresses.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect got " + std::to_string(addresses.size()) +
                                                 " addresses for a group of " + std::to_string(id_.size));
  {
    std::lock_guard lock(mu_);
    if (connected_) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect called twice");
    for (int r = 0; r < id_.size; ++r) peers_[r].address = std::string(addresses[r].begin(), addresses[r].end());
  }
  std::vector<std::string> names;
  for (auto& p : peers_) names.push_back(p.address);
  auto sockets = establishConnections(id_, names, nsocks_, listener_.get(), deadline);
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

// Under mu_: false (and the request failed) when the transport is broken.
bool SocketTransport::admit(RequestState& req, int peer) {
  if (broken_) {
    req.fail(brokenCode_, req.what() + " failed: " + *broken_);
    return false;
  }
  if (!connected_ && peer != id_.rank) throw Error(ErrorCode::kInvalidArgument, req.what() + ": connect() has not completed");
  return true;
}

// A send to oneself meets its receive: a local copy.
void SocketTransport::matchSelf(SendOp& s, RecvOp& r) {
  if (s.bytes != r.bytes) {
    s.req->fail(ErrorCode::kInvalidArgument, s.req->what() + ": the matching receive expects " + std::to_string(r.bytes) + " bytes");
    r.req->fail(ErrorCode::kInvalidArgument, r.req->what() + ": the matching send has " + std::to_string(s.bytes) + " bytes");
    return;
  }
  if (s.bytes) std::memcpy(r.data, s.data, s.bytes);
  s.req->complete();
  r.req->complete();
}

void SocketTransport::checkPeer(int peer, const char* op, size_t bytes) const {
  if (peer < 0 || peer >= id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": " + op + " of " + std::to_string(bytes) +
                                                 " bytes names peer " + std::to_string(peer) + ", outside 0.." +
                                                 std::to_string(id_.size - 1));
}

RequestPtr SocketTransport::isend(int peer, Tag tag, const void* data, size_t bytes) {
  checkPeer(peer, "send", bytes);
  auto req = std::make_shared<RequestState>(id_.describe() + ": send of " + std::to_string(bytes) + " bytes to " +
                                            peerName(peer) + ", tag " + std::to_string(tag));
  auto op = std::make_shared<SendOp>();
  op->req = req;
  op->data = static_cast<const uint8_t*>(data);
  op->bytes = bytes;
  std::lock_guard lock(mu_);
  if (!admit(*req, peer)) return req;
  Peer& p = peers_[peer];
  const uint64_t seq = p.sendSeq[tag]++;
  req->setCanceller([this, weak = std::weak_ptr<SendOp>(op)] {  // weak: op owns req
    std::lock_guard l(mu_);
    if (auto op = weak.lock()) cancelSend(op);
  });
  if (peer == id_.rank) {
    Key key{tag, seq};
    auto it = p.posted.find(key);
    if (it == p.posted.end()) {
      p.selfSends.emplace(key, op);
      return req;
    }
    auto r = it->second;
    p.posted.erase(it);
    matchSelf(*op, *r);
    return req;
  }
  if (p.departed) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
    return req;
  }
  const int n = (bytes >= opts_.stripeMinBytes && p.conns.size() > 1) ? static_cast<int>(p.conns.size()) : 1;
  const size_t per = n == 1 ? bytes : (bytes + n - 1) / n;
  op->chunksLeft = n;
  for (int i = 0; i < n; ++i) {
    Conn* c = n > 1 ? p.conns[i] : p.conns[p.roundRobin++ % p.conns.size()];
    OutChunk chunk;
    chunk.op = op;
    chunk.offset = std::min(bytes, per * i);
    chunk.len = static_cast<uint32_t>(std::min(per, bytes - chunk.offset));
    wire::encode(wire::ChunkHeader{wire::kData, tag, seq, bytes, chunk.offset, chunk.len}, chunk.header);
    c->sendq.push_back(std::move(chunk));
    if (c->sendq.size() == 1) flush(*c);  // nothing queued ahead: write straight from this thread
    if (broken_) break;
  }
  return req;
}

RequestPtr SocketTransport::irecv(int peer, Tag tag, void* data, size_t bytes) {
  checkPeer(peer, "receive", bytes);
  auto req = std::make_shared<RequestState>(id_.describe() + ": receive of " + std::to_string(bytes) + " bytes from " +
                                            peerName(peer) + ", tag " + std::to_string(tag));
  auto op = std::make_shared<RecvOp>();
  op->req = req;
  op->data = static_cast<uint8_t*>(data);
  op->bytes = bytes;
  std::lock_guard lock(mu_);
  if (!admit(*req, peer)) return req;
  Peer& p = peers_[peer];
  op->key = {tag, p.recvSeq[tag]++};
  req->setCanceller([this, peer, weak = std::weak_ptr<RecvOp>(op)] {  // weak: op owns req
    std::lock_guard l(mu_);
    if (auto op = weak.lock()) cancelRecv(peer, op);
  });
  if (peer == id_.rank) {
    auto it = p.selfSends.find(op->key);
    if (it == p.selfSends.end()) {
      p.posted.emplace(op->key, op);
      return req;
    }
    auto s = it->second;
    p.selfSends.erase(it);
    matchSelf(*s, *op);
    return req;
  }
  auto st = p.staged.find(op->key);
  if (st != p.staged.end()) {
    matchStaged(p, op);
  } else if (p.departed && std::all_of(p.conns.begin(), p.conns.end(), [](Conn* c) { return c->dead; })) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
  } else {
    p.posted.emplace(op->key, op);
    resumePaused(peer);
  }
  return req;
}

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

void SocketTransport::cancelSend(const std::shared_ptr<SendOp>& op) {
  // The message is already part of the stream (its sequence number is taken): it is still
  // delivered, from a private copy, so the caller may reuse the buffer and the peer's matching
  // stays intact.
  if (op->req->test() || !op->owned.empty() || op->bytes == 0) return;
  op->owned.assign(op->data, op->data + op->bytes);
  op->data = op->owned.data();
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

void SocketTransport::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + " aborted: " + reason, true);
}

// Fails everything pending and everything later. With tellPeers, an abort chunk goes to every
// peer after any chunk that is half on the wire (finished from a private copy).
void SocketTransport::breakLocked(ErrorCode code, const std::string& reason, bool tellPeers) {
  if (broken_) return;
  broken_ = reason;
  brokenCode_ = code;
  bool pending = false;
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
    if (tellPeers && !c->dead && c.get() == peers_[c->peer].conns.front()) {
      OutChunk a;
      a.control.assign(reason.begin(), reason.begin() + std::min<size_t>(reason.size(), wire::kMaxAbortReason));
      a.len = static_cast<uint32_t>(a.control.size());
      wire::encode(wire::ChunkHeader{wire::kAbort, 0, 0, a.len, 0, a.len}, a.header);
      c->sendq.push_back(std::move(a));
    }
    flush(*c);
  }
  for (auto& p : peers_) {
    pending |= !p.posted.empty() || !p.selfSends.empty();
    for (auto& [k, r] : p.posted) r->req->fail(code, r->req->what() + " failed: " + reason);
    for (auto& [k, s] : p.staged)
      if (s.waiter) s.waiter->req->fail(code, s.waiter->req->what() + " failed: " + reason);
    for (auto& [k, s] : p.selfSends) s->req->fail(code, s->req->what() + " failed: " + reason);
    p.posted.clear();
    p.selfSends.clear();
    for (Conn* c : p.conns)
      if (c->target) c->target->req->fail(code, c->target->req->what() + " failed: " + reason);
  }
  // An abort or a lost peer that cost operations is worth a warning; a quiet teardown is not.
  if (pending || tellPeers) logger().warn("{}", reason);
  else logger().debug("{}", reason);
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
      c.dead = true;
      setEvents(c);
      if (peers_[c.peer].departed) return peerLeft(c.peer);
      breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": connection to " + peerName(c.peer) +
                                                    " failed while sending: " + std::strerror(err), false);
      return;
    }
    ch.sent += static_cast<size_t>(w);
    if (ch.sent < wire::kChunkHeaderBytes + ch.len) break;
    std::shared_ptr<SendOp> op = std::move(ch.op);
    c.sendq.pop_front();
    if (op && --op->chunksLeft == 0) op->req->complete();  // no-op if cancelled or failed already
  }
  setEvents(c);
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
      if (peers_[c.peer].departed && !c.inPayload && c.hdrGot == 0) {
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

void SocketTransport::onEvent(Conn& c, uint32_t events) {
  if (events & EPOLLOUT) flush(c);
  if (c.dead) return;
  if (c.paused && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    // Paused, so we cannot read on to the end of the stream: the peer is gone mid-message.
    c.dead = true;
    setEvents(c);
    breakLocked(ErrorCode::kConnectionClosed, id_.describe() + ": " + peerName(c.peer) + " closed its connection (did the process exit?)", false);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readFrom(c);
}

void SocketTransport::progressLoop() {
  epoll_event events[64];
  while (!stop_.load()) {
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      logger().error("{}: epoll_wait failed: {}", id_.describe(), std::strerror(errno));
      return;
    }
    std::lock_guard lock(mu_);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeId) {
        uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof(v));
        continue;
      }
      auto it = conns_.find(events[i].data.u64);
      if (it != conns_.end()) onEvent(*it->second, events[i].events);
    }
  }
}

}  // namespace

std::unique_ptr<Transport> createSocketTransport(GroupIdentity identity, SocketOptions options) {
  return std::make_unique<SocketTransport>(std::move(identity), std::move(options));
}

}  // namespace eccl::transport
