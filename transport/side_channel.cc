#include "transport/side_channel.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "transport/socket/socket.h"
#include "transport/socket/socket_connector.h"

namespace eccl::transport {
namespace {

constexpr uint32_t kBye = 1, kAbort = 2, kPing = 3, kSuspect = 4;
constexpr uint32_t kMaxReason = 4096;

}  // namespace

SideChannel::SideChannel(GroupIdentity id, const std::string& host) : id_(std::move(id)) {
  listener_ = listenTcp(SocketAddress::resolve(host, 0), 1024);
  listenAddr_ = SocketAddress::ofSocket(listener_.get());
  epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throwSystemError("side channel epoll", errno);
  peers_.resize(id_.size);
}

void SideChannel::connect(const std::vector<std::string>& addresses, Deadline deadline, const GiveUpCheck& giveUp) {
  for (auto& s : establishConnections(id_, addresses, 1, listener_.get(), deadline, giveUp)) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = static_cast<uint32_t>(s.peer);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.fd.get(), &ev) != 0) throwSystemError("side channel epoll_ctl", errno);
    peers_[s.peer].fd = std::move(s.fd);
    peers_[s.peer].lastHeard = Clock::now();
  }
  listener_.reset();  // every peer is connected: nobody else may come in
}

std::vector<SideChannel::Event> SideChannel::poll() {
  std::vector<Event> out;
  epoll_event events[32];
  for (;;) {  // everything that is ready, also with more than 32 peers
    int n = ::epoll_wait(epoll_.get(), events, 32, 0);
    for (int i = 0; i < n; ++i) readFrom(static_cast<int>(events[i].data.u32), out);
    if (n < 32) return out;
  }
}

// Reads everything the peer's socket has into `out`: what it said, and whether it hung up (a
// ping only refreshes lastHeard).
void SideChannel::readFrom(int peer, std::vector<Event>& out) {
  PeerLink& p = peers_[peer];
  if (!p.fd) return;
  uint8_t buf[4096];
  std::optional<std::string> hungUp;
  for (;;) {
    ssize_t n = ::recv(p.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      hungUp = n == 0 ? "closed its connection (did the process exit?)" : std::string("broke its connection: ") + std::strerror(errno);
      break;
    }
    p.in.insert(p.in.end(), buf, buf + n);
    p.lastHeard = Clock::now();
  }
  // Frames first: a goodbye or an abort that came just before the hang-up explains it.
  bool aborted = false;
  while (p.in.size() >= 8) {
    uint32_t type, len;
    std::memcpy(&type, p.in.data(), 4);
    std::memcpy(&len, p.in.data() + 4, 4);
    if (type < kBye || type > kSuspect || len > kMaxReason + 4 || (type == kSuspect && len < 4)) {
      hungUp = "sent a malformed side-channel frame";
      p.byeSeen = false;
      p.in.clear();
      break;
    }
    if (p.in.size() < 8 + len) break;
    const std::string body(p.in.begin() + 8, p.in.begin() + 8 + len);
    if (type == kBye) {
      p.byeSeen = true;
    } else if (type == kAbort) {
      out.push_back(Event{Event::kAborted, peer, body});
      aborted = true;
    } else if (type == kSuspect) {
      uint32_t accused;
      std::memcpy(&accused, body.data(), 4);
      if (accused < peers_.size()) out.push_back(Event{Event::kSuspects, peer, body.substr(4), static_cast<int>(accused)});
    }
    p.in.erase(p.in.begin(), p.in.begin() + 8 + len);
  }
  if (hungUp) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.fd.get(), nullptr);
    p.fd.reset();
    if (!aborted) out.push_back(Event{p.byeSeen ? Event::kLeft : Event::kLost, peer, *hungUp});
  }
}

void SideChannel::sendFrame(uint32_t type, const std::string& payload) {
  const uint32_t len = static_cast<uint32_t>(std::min<size_t>(payload.size(), kMaxReason + (type == kSuspect ? 4 : 0)));
  std::vector<uint8_t> frame(8 + len);
  std::memcpy(frame.data(), &type, 4);
  std::memcpy(frame.data() + 4, &len, 4);
  std::memcpy(frame.data() + 8, payload.data(), len);
  // Frames are small and the sockets nearly idle, so they go out whole at once; a socket that
  // takes only part gets a short while for the rest (a cut frame would garble the stream).
  for (auto& p : peers_) {
    size_t sent = 0;
    for (auto until = Clock::now() + std::chrono::milliseconds(100); p.fd && sent < frame.size();) {
      ssize_t n = ::send(p.fd.get(), frame.data() + sent, frame.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && Clock::now() < until) {
        pollfd pfd{p.fd.get(), POLLOUT, 0};
        ::poll(&pfd, 1, 10);
      } else {
        break;  // gone, or stuck: liveness tells the peer the rest
      }
    }
  }
}

std::optional<std::string> SideChannel::peekLoss(const std::function<std::string(int)>& peerName) {
  for (auto& e : poll()) held_.push_back(std::move(e));
  for (auto& e : held_) {
    if (e.kind == Event::kLost) return id_.describe() + ": " + peerName(e.peer) + " " + e.reason;
    if (e.kind == Event::kAborted) return id_.describe() + ": " + peerName(e.peer) + " aborted the group: " + e.reason;
  }
  return std::nullopt;
}

std::vector<SideChannel::Event> SideChannel::takeEvents() {
  std::vector<Event> out;
  out.swap(held_);
  for (auto& e : poll()) out.push_back(std::move(e));
  return out;
}

std::optional<SideChannel::Break> SideChannel::breakFor(const Event& e, const GroupIdentity& id, const std::string& peerName) {
  switch (e.kind) {
    case Event::kLeft:
    case Event::kSuspects: return std::nullopt;  // the heartbeat monitor's business, not a break
    case Event::kAborted: return Break{ErrorCode::kAborted, id.describe() + ": " + peerName + " aborted the group: " + e.reason, true};
    case Event::kLost: return Break{ErrorCode::kConnectionClosed, id.describe() + ": " + peerName + " " + e.reason, true};
  }
  return std::nullopt;
}

void SideChannel::disconnect(int peer) {
  PeerLink& p = peers_[peer];
  if (!p.fd) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.fd.get(), nullptr);
  p.fd.reset();
  p.in.clear();
}

void SideChannel::sendAbort(const std::string& reason) { sendFrame(kAbort, reason); }
void SideChannel::sendBye() { sendFrame(kBye, {}); }
void SideChannel::sendPing() { sendFrame(kPing, {}); }
void SideChannel::sendSuspect(int accused, const std::string& evidence) {
  std::string payload(4, '\0');
  const uint32_t a = static_cast<uint32_t>(accused);
  std::memcpy(payload.data(), &a, 4);
  sendFrame(kSuspect, payload + evidence.substr(0, kMaxReason));
}

}  // namespace eccl::transport
