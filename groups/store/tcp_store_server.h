// The rendezvous store server: one epoll thread serving any number of TcpStoreClients
// (tested with 1,000+). Runs embedded in a rank's process or in the eccl-store binary.
//
// It binds exactly the address it is given (IPv4 or IPv6); port 0 picks a free port, reported by
// address(). A malformed, truncated or oversized frame, a failed or late authentication, a frame
// that stalls half-sent, or any failure while serving one client (even out of memory) closes only
// that client's connection, with a logged reason naming the client's address. Out of file
// descriptors, it refuses new connections (closing them at once, from a reserved descriptor) and
// keeps serving the ones it has; the warning is logged at most once per second.
//
// Thread-safety: the constructor starts the serving thread; address() and connectionCount() may
// be called from any thread; the destructor stops the thread and closes every connection.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "groups/store/store_protocol.h"
#include "transport/socket/address.h"
#include "transport/socket/fd.h"

namespace eccl {

struct TcpStoreServerOptions {
  std::string host = "127.0.0.1";  // "::1", "0.0.0.0", a name...; brackets optional for IPv6
  uint16_t port = 0;               // 0 = any free port
  int backlog = 1024;
  // Shared secret; when set, clients must pass an HMAC challenge first. Use
  // store::resolveToken() to read it from a file or ECCL_STORE_TOKEN.
  std::optional<std::string> token;
  store::StoreLimits limits;
  // A client that has not authenticated this long after connecting is dropped (token set only).
  std::chrono::milliseconds authTimeout{10000};
  // A client that sent part of a frame and then nothing for this long is dropped. Clients idle
  // between frames are never dropped: ranks hold their store connection for hours.
  std::chrono::milliseconds stallTimeout{30000};
};

class TcpStoreServer {
 public:
  explicit TcpStoreServer(TcpStoreServerOptions options);
  // Serves on a socket that is already bound and listening (e.g. created by a launcher before
  // it forked the ranks, so no port can be stolen in between). Takes ownership.
  TcpStoreServer(Fd listening, TcpStoreServerOptions options);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  const SocketAddress& address() const { return address_; }
  // Connections currently open (authenticated or not).
  size_t connectionCount() const { return connections_.load(); }

 private:
  class Loop;
  void start(Fd listening, TcpStoreServerOptions options);

  SocketAddress address_;
  std::atomic<size_t> connections_{0};
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace eccl
