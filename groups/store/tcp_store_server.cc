#include "groups/store/tcp_store_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <set>
#include <unordered_map>

#include "groups/store/store_auth.h"
#include "groups/store/store_state.h"
#include "base/deadline.h"
#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/socket/socket.h"

namespace eccl {

using store::Command;
using store::FrameWriter;
using store::Status;

namespace {
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr size_t kMinRead = 16 * 1024;
constexpr size_t kMaxRead = 4 * 1024 * 1024;
constexpr size_t kKeepCapacity = 256 * 1024;  // larger idle buffers are released
constexpr auto kIdleSpin = std::chrono::microseconds(50);
constexpr size_t kAuthBodyLimit = 1024;  // an AUTH body is one 32-byte MAC field
constexpr auto kSweepEvery = std::chrono::seconds(1);
constexpr auto kListenerBackoff = Millis(100);
constexpr auto kRefusalLogEvery = std::chrono::seconds(1);
}  // namespace

// Everything below runs on the serving thread only, except stop().
class TcpStoreServer::Loop {
 public:
  Loop(Fd listening, TcpStoreServerOptions opts, std::atomic<size_t>& count)
      : opts_(std::move(opts)), listener_(std::move(listening)), state_(opts_.limits), count_(count) {
    address_ = SocketAddress::ofSocket(listener_.get());
    epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
    wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!epoll_ || !wake_) throwSystemError("store server epoll/eventfd", errno);
    setNonBlocking(listener_.get(), true);
    watch(listener_.get(), EPOLLIN, kListenerId, EPOLL_CTL_ADD);
    watch(wake_.get(), EPOLLIN, kWakeId, EPOLL_CTL_ADD);
  }

  const SocketAddress& address() const { return address_; }
  void stop() {
    stopping_.store(true);
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof(one));
  }
  void run();

 private:
  struct Parked {
    store::WaitRequest wait;
    Clock::time_point deadline;
  };
  struct Conn {
    uint64_t id = 0;
    Fd fd;
    std::string peer;
    Clock::time_point connectedAt, lastRecv;
    std::vector<uint8_t> in;  // in[0, inLen) holds received, unprocessed bytes
    size_t inLen = 0;
    std::vector<uint8_t> out;  // out[outPos, size) is waiting to be sent
    size_t outPos = 0;
    uint32_t events = 0;
    bool authed = false;
    store::Nonce nonce{};
    std::optional<Parked> parked;
    bool hasOutput() const { return outPos < out.size(); }
  };

  void watch(int fd, uint32_t events, uint64_t id, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) throwSystemError("epoll_ctl", errno);
  }

  void acceptAll();
  bool refuseOne();
  void pauseListener();
  void noteRefusal();
  void sweep();
  int waitTimeoutMs() const;
  template <typename F>
  void guarded(uint64_t id, F&& serve);
  size_t bodyLimit(const Conn& c) const { return c.authed ? opts_.limits.maxBodyBytes() : kAuthBodyLimit; }
  void onEvent(uint64_t id, uint32_t events);
  void readFrom(Conn& c);
  void processFrames(Conn& c);
  void handleFrame(Conn& c, const store::FrameHeader& h, std::span<const uint8_t> body);
  void authenticate(Conn& c, const store::FrameHeader& h, std::span<const uint8_t> body);
  void park(Conn& c, store::WaitRequest wait);
  void unpark(Conn& c);
  void wakeWaiters(const std::vector<std::string>& changed);
  void expireWaits();
  void flush(Conn& c);
  void updateInterest(Conn& c);
  void drop(Conn& c, const std::string& reason, bool warn);
  Conn* find(uint64_t id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.get();
  }

  TcpStoreServerOptions opts_;
  Fd listener_, epoll_, wake_, spare_;
  SocketAddress address_;
  store::StoreState state_;
  std::atomic<size_t>& count_;
  std::atomic<bool> stopping_{false};
  uint64_t nextId_ = 2;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, std::set<uint64_t>> waiters_;  // key -> parked connection ids
  std::set<std::pair<Clock::time_point, uint64_t>> deadlines_;
  std::deque<uint64_t> ready_;  // connections with buffered requests to process
  // Clients that may time out (not yet authenticated, or holding part of a frame) exist.
  bool sweepNeeded_ = false;
  Clock::time_point nextSweep_{};
  std::optional<Clock::time_point> listenerPausedUntil_;
  uint64_t refusedSinceLog_ = 0;
  Clock::time_point lastRefusalLog_{};
};

void TcpStoreServer::Loop::run() {
  epoll_event events[256];
  while (!stopping_.load()) {
    int timeout = waitTimeoutMs();
    // Under load the next request is usually microseconds away: look again for a short while
    // before sleeping, which saves a sleep/wake-up per request when many clients are active.
    int n = ::epoll_wait(epoll_.get(), events, 256, 0);
    for (auto spinUntil = Clock::now() + kIdleSpin; n == 0 && Clock::now() < spinUntil;)
      n = ::epoll_wait(epoll_.get(), events, 256, 0);
    if (n == 0) n = ::epoll_wait(epoll_.get(), events, 256, timeout);
    if (n < 0 && errno != EINTR) {
      logger().error("store {}: epoll_wait failed: {}", address_.str(), std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) guarded(events[i].data.u64, [&] { onEvent(events[i].data.u64, events[i].events); });
    expireWaits();
    while (!ready_.empty()) {
      uint64_t id = ready_.front();
      ready_.pop_front();
      guarded(id, [&] {
        if (Conn* c = find(id)) processFrames(*c);
      });
    }
    auto now = Clock::now();
    if (listenerPausedUntil_ && now >= *listenerPausedUntil_) {
      listenerPausedUntil_.reset();
      watch(listener_.get(), EPOLLIN, kListenerId, EPOLL_CTL_MOD);
    }
    if (sweepNeeded_ && now >= nextSweep_) sweep();
  }
}

int TcpStoreServer::Loop::waitTimeoutMs() const {
  std::optional<Clock::time_point> wake;
  auto earliest = [&](Clock::time_point t) { wake = wake ? std::min(*wake, t) : t; };
  if (!deadlines_.empty()) earliest(deadlines_.begin()->first);
  if (sweepNeeded_) earliest(nextSweep_);
  if (listenerPausedUntil_) earliest(*listenerPausedUntil_);
  if (!wake) return -1;
  auto left = std::chrono::ceil<Millis>(*wake - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

// Whatever goes wrong while serving one client (a bad_alloc building its reply, say) costs that
// client its connection, never the serving thread.
template <typename F>
void TcpStoreServer::Loop::guarded(uint64_t id, F&& serve) {
  try {
    serve();
  } catch (const std::exception& e) {
    if (id == kListenerId || id == kWakeId) {
      logger().error("store {}: accepting failed: {}", address_.str(), e.what());
    } else if (Conn* c = find(id)) {
      drop(*c, std::string("failed while serving it: ") + e.what(), true);
    }
  }
}

// Drops clients that never authenticated, or that stopped in the middle of a frame; both hold a
// descriptor and memory for nothing (slowloris). Runs at most once a second, and only while
// such clients exist.
void TcpStoreServer::Loop::sweep() {
  auto now = Clock::now();
  nextSweep_ = now + kSweepEvery;
  bool atRisk = false;
  std::vector<std::pair<uint64_t, std::string>> late;
  for (auto& [id, c] : conns_) {
    if (!c->authed) {
      if (now - c->connectedAt >= opts_.authTimeout)
        late.emplace_back(id, "did not authenticate within " + std::to_string(opts_.authTimeout.count()) + " ms");
      else
        atRisk = true;
    } else if (c->inLen > 0 && !c->parked && !c->hasOutput()) {
      if (now - c->lastRecv >= opts_.stallTimeout)
        late.emplace_back(id, "sent " + std::to_string(c->inLen) + " bytes of a frame, then nothing for " +
                                  std::to_string(opts_.stallTimeout.count()) + " ms");
      else
        atRisk = true;
    }
  }
  for (auto& [id, reason] : late)
    if (Conn* c = find(id)) drop(*c, reason, true);
  sweepNeeded_ = atRisk;
}

void TcpStoreServer::Loop::onEvent(uint64_t id, uint32_t ev) {
  if (id == kListenerId) return acceptAll();
  if (id == kWakeId) {
    uint64_t v;
    [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof(v));
    return;
  }
  Conn* c = find(id);
  if (c == nullptr) return;
  if (ev & EPOLLERR) return drop(*c, "socket error", false);
  if (ev & EPOLLOUT) {
    flush(*c);
    if (!(c = find(id))) return;
  }
  if (ev & EPOLLIN) return readFrom(*c);
  if (ev & (EPOLLRDHUP | EPOLLHUP)) drop(*c, "client disconnected", false);
}

void TcpStoreServer::Loop::acceptAll() {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        if (refuseOne()) continue;
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        logger().warn("store {}: accept failed: {}", address_.str(), std::strerror(errno));
      return;
    }
    Fd owned(fd);
    auto c = std::make_unique<Conn>();
    c->id = nextId_++;
    c->fd = std::move(owned);
    c->connectedAt = c->lastRecv = Clock::now();
    c->peer = SocketAddress(reinterpret_cast<sockaddr*>(&ss), len).str();
    setNoDelay(fd);
    c->events = EPOLLIN | EPOLLRDHUP;
    watch(fd, c->events, c->id, EPOLL_CTL_ADD);
    bool auth = opts_.token.has_value();
    c->authed = !auth;
    if (auth && !sweepNeeded_) {
      sweepNeeded_ = true;
      nextSweep_ = Clock::now() + kSweepEvery;
    }
    FrameWriter hello(c->out, uint8_t(Status::kHello));
    hello.u64(store::kVersion).u64(auth ? 1 : 0);
    if (auth) {
      c->nonce = store::randomNonce();
      hello.field(c->nonce);
    } else {
      hello.field(ByteView());
    }
    hello.finish();
    Conn& ref = *c;
    conns_.emplace(c->id, std::move(c));
    count_.store(conns_.size());
    logger().debug("store {}: client {} connected", address_.str(), ref.peer);
    flush(ref);
  }
}

// Out of descriptors: accept with the reserved one and close at once, so the client sees a closed
// connection instead of a hang and the listener does not stay readable forever. Linux reports
// EMFILE before it looks at the queue, so the accept may find nobody: then stop until the next
// event. Returns true when a connection was refused and more may wait.
bool TcpStoreServer::Loop::refuseOne() {
  if (!spare_) {
    spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!spare_) {
      pauseListener();  // something else took the descriptor; look again shortly
      return false;
    }
  }
  spare_.reset();
  int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  noteRefusal();
  return true;
}

void TcpStoreServer::Loop::pauseListener() {
  if (listenerPausedUntil_) return;
  listenerPausedUntil_ = Clock::now() + kListenerBackoff;
  watch(listener_.get(), 0, kListenerId, EPOLL_CTL_MOD);
  noteRefusal();
}

void TcpStoreServer::Loop::noteRefusal() {
  ++refusedSinceLog_;
  auto now = Clock::now();
  if (now - lastRefusalLog_ < kRefusalLogEvery) return;
  logger().warn("store {}: out of file descriptors with {} clients open; refused {} connection(s) since the last "
                "report",
                address_.str(), conns_.size(), refusedSinceLog_);
  refusedSinceLog_ = 0;
  lastRefusalLog_ = now;
}

void TcpStoreServer::Loop::readFrom(Conn& c) {
  if (c.parked || c.hasOutput()) return updateInterest(c);
  // Read what the current frame still needs (at least kMinRead, to pick up pipelined frames),
  // never more than kMaxRead at once, and never more than the bytes already held: the buffer
  // grows by doubling as bytes actually arrive, so a large announced length followed by silence
  // costs kMinRead, not the length. Before authentication only an AUTH-sized frame is accepted.
  size_t need = kMinRead;
  if (c.inLen >= store::kHeaderBytes) {
    store::FrameHeader h;
    if (auto bad = store::decodeHeader(c.in.data(), bodyLimit(c), h)) return drop(c, *bad, true);
    size_t frame = store::kHeaderBytes + h.bodyBytes;
    size_t left = frame - std::min(c.inLen, frame);
    need = std::max(need, std::min(left, c.inLen));
  }
  need = std::min(need, kMaxRead);
  if (c.in.size() < c.inLen + need) c.in.resize(c.inLen + need);
  ssize_t n = ::recv(c.fd.get(), c.in.data() + c.inLen, c.in.size() - c.inLen, 0);
  if (n == 0) {
    if (c.inLen > 0) return drop(c, "disconnected in the middle of a frame (" + std::to_string(c.inLen) + " bytes buffered)", true);
    return drop(c, "client disconnected", false);
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    return drop(c, std::string("recv failed: ") + std::strerror(errno), false);
  }
  c.inLen += static_cast<size_t>(n);
  c.lastRecv = Clock::now();
  processFrames(c);
}

void TcpStoreServer::Loop::processFrames(Conn& c) {
  const uint64_t id = c.id;
  size_t pos = 0;
  while (!c.parked && !c.hasOutput() && c.inLen - pos >= store::kHeaderBytes) {
    store::FrameHeader h;
    if (auto bad = store::decodeHeader(c.in.data() + pos, bodyLimit(c), h)) return drop(c, *bad, true);
    size_t total = store::kHeaderBytes + h.bodyBytes;
    if (c.inLen - pos < total) break;
    handleFrame(c, h, std::span<const uint8_t>(c.in.data() + pos + store::kHeaderBytes, h.bodyBytes));
    if (find(id) == nullptr) return;  // dropped while handling
    pos += total;
  }
  if (pos > 0) {
    std::memmove(c.in.data(), c.in.data() + pos, c.inLen - pos);
    c.inLen -= pos;
  }
  if (c.inLen == 0 && c.in.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(c.in);
  if (c.inLen > 0 && !sweepNeeded_) {
    sweepNeeded_ = true;
    nextSweep_ = Clock::now() + kSweepEvery;
  }
  updateInterest(c);
}

void TcpStoreServer::Loop::handleFrame(Conn& c, const store::FrameHeader& h, std::span<const uint8_t> body) {
  if (!c.authed) return authenticate(c, h, body);
  std::vector<std::string> changed;
  try {
    auto wait = state_.execute(static_cast<Command>(h.code), body, c.out, changed);
    if (wait) park(c, std::move(*wait));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kProtocol)
      return drop(c, std::string(store::commandName(h.code)) + ": " + e.what(), true);
    FrameWriter(c.out, uint8_t(Status::kError)).field(e.what()).finish();
  }
  flush(c);
  if (!changed.empty()) wakeWaiters(changed);
}

void TcpStoreServer::Loop::authenticate(Conn& c, const store::FrameHeader& h, std::span<const uint8_t> body) {
  if (h.code != uint8_t(Command::kAuth))
    return drop(c, std::string("sent ") + store::commandName(h.code) + " before authenticating", true);
  store::FieldReader r(body);
  std::span<const uint8_t> mac;
  bool good = false;
  try {
    good = r.next(mac) && r.done() && store::macEquals(mac, store::computeMac(*opts_.token, c.nonce));
  } catch (const Error&) {
    good = false;
  }
  if (!good) return drop(c, "authentication failed (wrong token)", true);
  c.authed = true;
  FrameWriter(c.out, uint8_t(Status::kOk)).finish();
  flush(c);
}

void TcpStoreServer::Loop::park(Conn& c, store::WaitRequest wait) {
  auto deadline = Clock::now() + Millis(std::min<uint64_t>(wait.timeoutMs, uint64_t(1) << 40));
  for (auto& k : wait.keys) waiters_[k].insert(c.id);
  deadlines_.emplace(deadline, c.id);
  c.parked = Parked{std::move(wait), deadline};
}

void TcpStoreServer::Loop::unpark(Conn& c) {
  for (auto& k : c.parked->wait.keys) {
    auto it = waiters_.find(k);
    if (it == waiters_.end()) continue;
    it->second.erase(c.id);
    if (it->second.empty()) waiters_.erase(it);
  }
  deadlines_.erase({c.parked->deadline, c.id});
  c.parked.reset();
  c.lastRecv = Clock::now();  // we stopped reading while it waited: the stall clock starts now
}

void TcpStoreServer::Loop::wakeWaiters(const std::vector<std::string>& changed) {
  std::vector<uint64_t> candidates;
  for (auto& k : changed) {
    auto it = waiters_.find(k);
    if (it != waiters_.end()) candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  }
  for (uint64_t id : candidates) {
    guarded(id, [&] {
      Conn* c = find(id);
      if (c == nullptr || !c->parked || !state_.allExist(c->parked->wait.keys)) return;
      state_.replyToWait(c->parked->wait, c->out);
      unpark(*c);
      ready_.push_back(id);
      flush(*c);
    });
  }
}

void TcpStoreServer::Loop::expireWaits() {
  auto now = Clock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    uint64_t id = deadlines_.begin()->second;
    Conn* c = find(id);
    if (c == nullptr || !c->parked) {
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    guarded(id, [&] {
      state_.replyTimeout(c->parked->wait, c->out);
      unpark(*c);
      ready_.push_back(id);
      flush(*c);
    });
  }
}

void TcpStoreServer::Loop::flush(Conn& c) {
  while (c.hasOutput()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.outPos, c.out.size() - c.outPos, MSG_NOSIGNAL);
    if (n > 0) {
      c.outPos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return drop(c, std::string("send failed: ") + std::strerror(errno), false);
  }
  if (!c.hasOutput()) {
    if (c.outPos > 0) c.lastRecv = Clock::now();  // reading resumes only now (pipelined frames)
    c.out.clear();
    c.outPos = 0;
    if (c.out.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(c.out);
    if (c.inLen > 0 && !c.parked) ready_.push_back(c.id);
  }
  updateInterest(c);
}

void TcpStoreServer::Loop::updateInterest(Conn& c) {
  // One request at a time per client: while a reply is pending or a wait is parked, only watch
  // for the reply draining and for hang-ups. This bounds each client's buffered output.
  uint32_t want = EPOLLRDHUP;
  if (c.hasOutput()) want |= EPOLLOUT;
  else if (!c.parked) want |= EPOLLIN;
  if (want != c.events) {
    c.events = want;
    watch(c.fd.get(), want, c.id, EPOLL_CTL_MOD);
  }
}

void TcpStoreServer::Loop::drop(Conn& c, const std::string& reason, bool warn) {
  if (warn) logger().warn("store {}: dropped client {}: {}", address_.str(), c.peer, reason);
  else logger().debug("store {}: client {} gone: {}", address_.str(), c.peer, reason);
  if (c.parked) unpark(c);
  conns_.erase(c.id);  // closes the socket, which also removes it from epoll
  count_.store(conns_.size());
}

TcpStoreServer::TcpStoreServer(TcpStoreServerOptions options) {
  auto addr = SocketAddress::resolve(options.host, options.port);
  Fd fd = listenTcp(addr, options.backlog);
  start(std::move(fd), std::move(options));
}

TcpStoreServer::TcpStoreServer(Fd listening, TcpStoreServerOptions options) {
  start(std::move(listening), std::move(options));
}

void TcpStoreServer::start(Fd listening, TcpStoreServerOptions options) {
  options.limits.validate();
  if (options.authTimeout.count() <= 0 || options.stallTimeout.count() <= 0)
    throw Error(ErrorCode::kInvalidArgument, "store server authTimeout and stallTimeout must be positive");
  loop_ = std::make_unique<Loop>(std::move(listening), std::move(options), connections_);
  address_ = loop_->address();
  thread_ = std::thread([this] {
    nameThisThread("eccl-store");
    try {
      loop_->run();
    } catch (const std::exception& e) {
      logger().error("store {}: serving thread stopped: {}", address_.str(), e.what());
    }
  });
  logger().info("store serving on {}", address_.str());
}

TcpStoreServer::~TcpStoreServer() {
  loop_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace eccl
