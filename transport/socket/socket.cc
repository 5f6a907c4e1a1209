#include "transport/socket/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <sched.h>
#include <thread>

#include "base/error.h"

namespace eccl {

void setNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0) throwSystemError("fcntl(F_GETFL)", errno);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) < 0) throwSystemError("fcntl(F_SETFL)", errno);
}

void setNoDelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) throwSystemError("TCP_NODELAY", errno);
}

void setBufferBytes(int fd, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0) throwSystemError("SO_SNDBUF " + std::to_string(bytes), errno);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) != 0) throwSystemError("SO_RCVBUF " + std::to_string(bytes), errno);
}

namespace {

// The socket's local (own) or remote (peer) address; nullopt when the kernel cannot say (e.g.
// the connection was reset right after it completed). Unlike SocketAddress::ofSocket, never throws.
std::optional<SocketAddress> endpoint(int fd, bool peer) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  auto* p = reinterpret_cast<sockaddr*>(&sa);
  if ((peer ? ::getpeername(fd, p, &len) : ::getsockname(fd, p, &len)) != 0) return std::nullopt;
  return SocketAddress(p, len);
}

}  // namespace

bool isSelfConnected(int fd) {
  auto own = endpoint(fd, false), peer = endpoint(fd, true);
  return own && peer && own->str() == peer->str();
}

bool staysOnThisMachine(int fd) {
  auto own = endpoint(fd, false), peer = endpoint(fd, true);
  return own && peer && own->host() == peer->host();
}

Fd listenTcp(const SocketAddress& addr, int backlog) {
  Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throwSystemError("socket() for listening on " + addr.str(), errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd.get(), addr.sockaddrPtr(), addr.length()) != 0) throwSystemError("bind(" + addr.str() + ")", errno);
  if (::listen(fd.get(), backlog) != 0) throwSystemError("listen(" + addr.str() + ")", errno);
  return fd;
}

namespace {

// Waits for `events` on fd until the deadline; false on timeout.
bool pollFor(int fd, short events, Deadline deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    int rc = ::poll(&p, 1, deadline.pollTimeoutMs());
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throwSystemError("poll", errno);
  }
}

bool retryableConnectError(int err) {
  return err == ECONNREFUSED || err == ETIMEDOUT || err == ENETUNREACH || err == EHOSTUNREACH ||
         err == ECONNRESET || err == EAGAIN || err == ECONNABORTED;
}

}  // namespace

int connectAttempt(int fd, const SocketAddress& addr, Deadline deadline) {
  int err = ::connect(fd, addr.sockaddrPtr(), addr.length()) == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    if (!pollFor(fd, POLLOUT, deadline)) return ETIMEDOUT;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err == 0 && isSelfConnected(fd)) return ECONNREFUSED;  // nobody listens there (yet)
  return err;
}

Fd connectTcp(const SocketAddress& addr, Deadline deadline, const GiveUpCheck& giveUp) {
  std::minstd_rand rng(std::random_device{}());
  auto backoff = Millis(10);
  int lastErr = 0;
  int attempts = 0;
  for (;;) {
    ++attempts;
    Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throwSystemError("socket() for connecting to " + addr.str(), errno);
    // (A peer that will never answer must not hold up the next look at giveUp for long.)
    const Deadline attempt = giveUp ? Deadline::after(std::min(deadline.remaining(), Millis(1000))) : deadline;
    const int err = connectAttempt(fd.get(), addr, attempt);
    if (err == 0) {
      setNoDelay(fd.get());
      return fd;
    }
    lastErr = err;
    if (!retryableConnectError(err)) break;
    if (auto why = giveUp ? giveUp() : std::nullopt)
      throw Error(ErrorCode::kAborted, "gave up connecting to " + addr.str() + ": " + *why);
    auto left = deadline.remaining();
    if (left <= Millis(0)) break;
    // Jitter spreads out many ranks that all started before the server.
    auto sleep = std::min(left, Millis(backoff.count() / 2 + rng() % (backoff.count() / 2 + 1)));
    std::this_thread::sleep_for(sleep);
    backoff = std::min(backoff * 2, Millis(1000));
  }
  throw Error(ErrorCode::kConnectFailed, "could not connect to " + addr.str() + " after " +
                                             std::to_string(attempts) + " attempt(s): " +
                                             std::strerror(lastErr));
}

bool waitReady(int fd, short events, Deadline deadline, const GiveUpCheck& giveUp, const std::function<std::string()>& what) {
  if (!giveUp) return pollFor(fd, events, deadline);
  pollfd p{fd, events, 0};
  for (;;) {
    // One look at giveUp per 200 ms slice, however often signals interrupt the poll.
    const auto sliceEnd = std::min(deadline.at(), Clock::now() + Millis(200));
    int rc;
    do {
      const auto left = std::chrono::ceil<Millis>(sliceEnd - Clock::now()).count();
      rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
    } while (rc < 0 && errno == EINTR);
    if (rc > 0) return true;
    if (rc < 0) throwSystemError("poll", errno);
    if (auto why = giveUp())
      throw Error(ErrorCode::kAborted, (what ? what() : std::string("gave up waiting")) + ": " + *why);
    if (deadline.expired()) return false;
  }
}

void sendAll(int fd, const void* data, size_t len, Deadline deadline, const std::string& peer) {
  auto* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!pollFor(fd, POLLOUT, deadline))
        throw Error(ErrorCode::kTimeout, "timed out sending " + std::to_string(len) + " bytes to " + peer);
      continue;
    }
    throw Error(ErrorCode::kConnectionClosed,
                "connection to " + peer + " failed while sending: " + std::strerror(errno));
  }
}

void recvAll(int fd, void* data, size_t len, Deadline deadline, const std::string& peer, const GiveUpCheck& giveUp) {
  auto* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, 0);
    if (n > 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) throw Error(ErrorCode::kConnectionClosed, peer + " closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!waitReady(fd, POLLIN, deadline, giveUp, [&] { return "gave up waiting for " + peer; }))
        throw Error(ErrorCode::kTimeout, "timed out waiting for " + std::to_string(len) + " bytes from " + peer);
      continue;
    }
    throw Error(ErrorCode::kConnectionClosed,
                "connection to " + peer + " failed while receiving: " + std::strerror(errno));
  }
}

size_t recvSome(int fd, void* data, size_t len, Deadline deadline, const std::string& peer,
                std::chrono::microseconds spin) {
  auto spinUntil = Clock::now() + spin;
  bool spinning = spin.count() > 0;
  for (;;) {
    if (!spinning && !pollFor(fd, POLLIN, deadline))
      throw Error(ErrorCode::kTimeout, "timed out waiting for data from " + peer);
    ssize_t n = ::recv(fd, data, len, MSG_DONTWAIT);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) throw Error(ErrorCode::kConnectionClosed, peer + " closed the connection");
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
      throw Error(ErrorCode::kConnectionClosed,
                  "connection to " + peer + " failed while receiving: " + std::strerror(errno));
    if (spinning) {
      ::sched_yield();
      spinning = Clock::now() < spinUntil;
    }
  }
}

}  // namespace eccl
