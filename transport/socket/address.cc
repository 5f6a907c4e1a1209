#include "transport/socket/address.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "base/error.h"

namespace eccl {

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) {
  if (len > sizeof(storage_)) len = sizeof(storage_);
  std::memcpy(&storage_, sa, len);
  len_ = len;
}

SocketAddress SocketAddress::resolve(std::string_view hostIn, uint16_t port) {
  std::string host(hostIn);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) throw Error(ErrorCode::kInvalidArgument, "empty host name");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot resolve host '" + host + "': " + ::gai_strerror(rc));
  }
  SocketAddress out(res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  return out.withPort(port);
}

SocketAddress SocketAddress::parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return Error(ErrorCode::kInvalidArgument,
                 "bad address '" + std::string(text) + "': " + why + " (expected host:port or [v6]:port)");
  };
  std::string_view host, portText;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw bad("unterminated IPv6 bracket or missing port");
    host = text.substr(1, close - 1);
    portText = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw bad("missing port");
    if (text.find(':') != colon) throw bad("IPv6 addresses need brackets");
    host = text.substr(0, colon);
    portText = text.substr(colon + 1);
  }
  if (host.empty()) throw bad("empty host");
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || port > 65535 || portText.empty())
    throw bad("port is not a number in 0..65535");
  return resolve(host, static_cast<uint16_t>(port));
}

SocketAddress SocketAddress::ofSocket(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throwSystemError("getsockname", errno);
  return SocketAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress SocketAddress::ofPeer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throwSystemError("getpeername", errno);
  return SocketAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

SocketAddress SocketAddress::withPort(uint16_t port) const {
  SocketAddress out = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(port);
  return out;
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
  } else {
    return "<no address>";
  }
  return buf;
}

std::string SocketAddress::str() const {
  // fmt rather than operator+ on a temporary: GCC 12 at -O3 warns falsely (-Wrestrict) on
  // "[" + std::string.
  if (family() == AF_INET6) return fmt::format("[{}]:{}", host(), port());
  return fmt::format("{}:{}", host(), port());
}

}  // namespace eccl
