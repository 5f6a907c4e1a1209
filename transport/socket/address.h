// An IPv4 or IPv6 socket address with a host:port text form ("127.0.0.1:29500",
// "[::1]:29500"). Value type; thread-compatible.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace eccl {

class SocketAddress {
 public:
  SocketAddress() = default;
  SocketAddress(const sockaddr* sa, socklen_t len);

  // Parses "host:port", "[v6]:port" or a bare "v6:addr" is rejected (ambiguous: use brackets).
  // `host` may be a name; it is resolved with getaddrinfo (first result, IPv4 or IPv6).
  // Throws Error(kInvalidArgument) naming the text on malformed input or a failed lookup.
  static SocketAddress parse(std::string_view hostPort);
  // Resolves host (numeric or name, brackets optional for IPv6) with the given port.
  static SocketAddress resolve(std::string_view host, uint16_t port);

  // Addresses of the local socket / its peer (getsockname / getpeername).
  static SocketAddress ofSocket(int fd);
  static SocketAddress ofPeer(int fd);

  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  SocketAddress withPort(uint16_t port) const;
  std::string host() const;  // numeric, without brackets
  std::string str() const;   // "host:port", IPv6 in brackets

  const sockaddr* sockaddrPtr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace eccl
