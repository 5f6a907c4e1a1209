// A store server in a child process, so tests and benchmarks can kill it, measure its memory,
// or keep it off the measuring process's threads; plus small helpers around it.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "apps/common/local_ranks.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"
#include "transport/socket/socket.h"

namespace eccl {

// A TcpStoreServer running in a forked child. The parent binds the socket first, so the address
// is known before the child runs. The destructor kills and reaps the child (by pid).
class ChildStoreServer {
 public:
  explicit ChildStoreServer(TcpStoreServerOptions opts = {}, const std::string& host = "127.0.0.1") {
    Fd fd = listenTcp(SocketAddress::resolve(host, 0));
    address_ = SocketAddress::ofSocket(fd.get());
    pid_ = forkChild([&] {
      TcpStoreServer server(std::move(fd), opts);
      for (;;) ::pause();
      return 0;
    });
  }
  ~ChildStoreServer() { kill(); }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      reapChild(pid_, std::chrono::seconds(10));
      pid_ = -1;
    }
  }
  const SocketAddress& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  SocketAddress address_;
  pid_t pid_ = -1;
};

// Resident set size of `pid` in KiB, from /proc.
inline long rssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Reads until the peer closes or the deadline passes; true when it closed.
inline bool waitForClose(int fd, Millis timeout) {
  auto deadline = Deadline::after(timeout);
  char buf[4096];
  for (;;) {
    try {
      recvAll(fd, buf, sizeof(buf), deadline, "store");
    } catch (const Error& e) {
      return e.code() == ErrorCode::kConnectionClosed;
    }
  }
}

}  // namespace eccl
