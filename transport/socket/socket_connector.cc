#include "transport/socket/socket_connector.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/error.h"
#include "base/logging.h"
#include "transport/socket/socket.h"
#include "transport/socket/socket_wire.h"

namespace eccl::transport {
namespace {

// A peer that connects but stalls in its hello must not hold up the whole group.
constexpr Millis kHelloTimeout{10000};

void sendReply(int fd, bool ok, const std::string& message, Deadline deadline, const std::string& peer) {
  std::vector<uint8_t> out(12 + message.size());
  uint32_t magic = wire::kHelloMagic, okv = ok, len = static_cast<uint32_t>(message.size());
  std::memcpy(out.data(), &magic, 4);
  std::memcpy(out.data() + 4, &okv, 4);
  std::memcpy(out.data() + 8, &len, 4);
  std::memcpy(out.data() + 12, message.data(), message.size());
  sendAll(fd, out.data(), out.size(), deadline, peer);
}

// Reads and checks one hello on an accepted socket. Returns the reason to refuse it, or "".
std::string readHello(int fd, const GroupIdentity& id, int nsocks, Deadline deadline, const GiveUpCheck& giveUp,
                      const std::string& from, wire::Hello& h) {
  uint8_t fixed[wire::kHelloFixedBytes];
  recvAll(fd, fixed, sizeof(fixed), deadline, from, giveUp);
  uint32_t glen = 0;
  if (auto bad = wire::decodeHelloFixed(fixed, h, glen); !bad.empty()) return bad;
  h.group.resize(glen);
  recvAll(fd, h.group.data(), glen, deadline, from, giveUp);
  return helloMismatch(id, nsocks, h);
}

}  // namespace

std::string describeHello(const wire::Hello& h) {
  return "group '" + h.group + "' epoch " + std::to_string(h.epoch) + " rank " + std::to_string(h.from) + " of " +
         std::to_string(h.size);
}

std::string helloMismatch(const GroupIdentity& id, int nsocks, const wire::Hello& h) {
  if (h.group != id.group || h.epoch != id.epoch || h.size != id.size)
    return "this is " + id.describe() + "; the connection is from " + describeHello(h);
  if (h.to != id.rank) return "the connection from " + describeHello(h) + " is meant for rank " + std::to_string(h.to) + ", this is " + id.describe();
  if (h.from <= id.rank || h.from >= id.size) return "rank " + std::to_string(h.from) + " must not connect to " + id.describe();
  if (static_cast<int>(h.nsocks) != nsocks || h.stream >= nsocks)
    return describeHello(h) + " uses " + std::to_string(h.nsocks) + " sockets per peer, " + id.describe() + " uses " + std::to_string(nsocks);
  return "";
}

std::vector<ConnectedSocket> establishConnections(const GroupIdentity& id, const std::vector<std::string>& addresses,
                                                  int nsocks, int listenFd, Deadline deadline, const GiveUpCheck& giveUp) {
  std::vector<ConnectedSocket> out;
  // An empty address: this pair is not connected here (another transport carries it).
  auto member = [&](int r) { return r >= 0 && r < static_cast<int>(addresses.size()) && !addresses[r].empty(); };
  // 1. Connect to every lower rank.
  for (int peer = 0; peer < id.rank; ++peer) {
    if (!member(peer)) continue;
    const std::string name = "rank " + std::to_string(peer) + " (" + addresses[peer] + ")";
    auto addr = SocketAddress::parse(addresses[peer]);
    for (int k = 0; k < nsocks; ++k) {
      Fd fd;
      try {
        fd = connectTcp(addr, deadline, giveUp);
        auto hello = wire::encode(wire::Hello{static_cast<uint16_t>(k), static_cast<uint32_t>(nsocks), id.rank, peer, id.size, id.epoch, id.group});
        sendAll(fd.get(), hello.data(), hello.size(), deadline, name);
        uint8_t reply[12];
        // (A lower rank that hangs after its kernel accepted us never answers: a build called
        // off meanwhile must not wait for it until the deadline.)
        recvAll(fd.get(), reply, sizeof(reply), deadline, name, giveUp);
        uint32_t magic, ok, len;
        std::memcpy(&magic, reply, 4);
        std::memcpy(&ok, reply + 4, 4);
        std::memcpy(&len, reply + 8, 4);
        if (magic != wire::kHelloMagic || len > 65536) throw Error(ErrorCode::kProtocol, name + " answered with something that is not an eccl reply");
        std::string message(len, '\0');
        recvAll(fd.get(), message.data(), len, deadline, name, giveUp);
        if (!ok) throw Error(ErrorCode::kConnectFailed, name + " refused the connection: " + message);
      } catch (const Error& e) {
        throw Error(e.code(), id.describe() + ": connecting to " + name + " failed: " + e.what());
      }
      out.push_back({std::move(fd), peer, k});
    }
  }
  // 2. Accept from every higher rank.
  std::set<std::pair<int, int>> have;
  size_t expected = 0;
  for (int r = id.rank + 1; r < id.size; ++r) expected += member(r) ? nsocks : 0;
  auto missing = [&] {
    std::string out;
    for (int r = id.rank + 1; r < id.size; ++r)
      for (int k = 0; k < nsocks && member(r); ++k)
        if (!have.count({r, k})) {
          out += (out.empty() ? "" : ", ") + ("rank " + std::to_string(r) + " (" + addresses[r] + ")");
          break;
        }
    return out;
  };
  while (have.size() < expected) {
    if (!waitReady(listenFd, POLLIN, deadline, giveUp,
                   [&] { return id.describe() + ": gave up waiting for connections from " + missing(); }))
      throw Error(ErrorCode::kTimeout, id.describe() + ": timed out waiting for connections from " + missing());
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    Fd fd(::accept4(listenFd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) continue;
    const std::string from = SocketAddress(reinterpret_cast<sockaddr*>(&ss), len).str();
    setNoDelay(fd.get());
    Deadline helloDeadline = Deadline::after(std::min(deadline.remaining(), kHelloTimeout));
    try {
      wire::Hello h;
      std::string refusal = readHello(fd.get(), id, nsocks, helloDeadline, giveUp, from, h);
      if (refusal.empty() && !member(h.from)) refusal = describeHello(h) + " is not a peer of this transport (another one carries that pair)";
      if (refusal.empty() && have.count({h.from, h.stream})) refusal = describeHello(h) + " connected stream " + std::to_string(h.stream) + " twice";
      if (!refusal.empty()) {
        logger().warn("{}: refused a connection from {}: {}", id.describe(), from, refusal);
        sendReply(fd.get(), false, refusal, helloDeadline, from);
        continue;
      }
      sendReply(fd.get(), true, "", helloDeadline, from);
      have.insert({h.from, h.stream});
      out.push_back({std::move(fd), h.from, h.stream});
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kAborted)  // the build was called off
        throw Error(e.code(), id.describe() + ": waiting for connections from " + missing() + ": " + e.what());
      logger().warn("{}: dropped a connection from {} during the handshake: {}", id.describe(), from, e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const ConnectedSocket& a, const ConnectedSocket& b) {
    return a.peer != b.peer ? a.peer < b.peer : a.stream < b.stream;
  });
  return out;
}

}  // namespace eccl::transport
