// N transports of one group inside this process, connected to each other. Which transport:
// TransportOptions, or for localGroup $ECCL_TRANSPORT (default auto), so the comm, groups and
// EPLB suites run over every transport: ctest runs them again with ECCL_TRANSPORT=socket and ofi.
#pragma once

#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "transport/transport_factory.h"

namespace eccl::testing {

// Connects transports of one group that were made in this process (each rank in a thread, as
// connect() is collective); rethrows the first rank's error.
inline void connectAll(std::vector<std::unique_ptr<transport::Transport>>& ts) {
  const int n = static_cast<int>(ts.size());
  std::vector<transport::AddressBlob> addrs;
  for (auto& t : ts) addrs.push_back(t->address());
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        ts[r]->connect(addrs, Deadline::after(std::chrono::seconds(30)));
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

inline std::vector<std::unique_ptr<transport::Transport>> localTransports(int n, transport::TransportOptions opts,
                                                                            const std::string& group = "test",
                                                                            uint64_t epoch = 0) {
  if (opts.host.empty()) opts.host = "127.0.0.1";
  std::vector<std::unique_ptr<transport::Transport>> ts;
  for (int r = 0; r < n; ++r) ts.push_back(transport::createTransport({group, epoch, r, n}, opts));
  connectAll(ts);
  return ts;
}

inline std::vector<std::unique_ptr<transport::Transport>> localGroup(int n, transport::SocketOptions opts = {},
                                                                       const std::string& group = "test", uint64_t epoch = 0) {
  return localTransports(n, {.host = opts.host, .socket = opts}, group, epoch);
}

// Sockets whatever $ECCL_TRANSPORT says: for the socket transport's own tests.
inline std::vector<std::unique_ptr<transport::Transport>> socketGroup(int n, transport::SocketOptions opts = {},
                                                                        const std::string& group = "test") {
  return localTransports(n, {.kind = "socket", .host = opts.host, .socket = opts}, group);
}

// An address blob through a pipe, for a rank forked into a child process: u32 length + bytes.
inline void writeBlob(int fd, const transport::AddressBlob& b) {
  uint32_t len = static_cast<uint32_t>(b.size());
  [[maybe_unused]] auto w1 = ::write(fd, &len, 4);
  [[maybe_unused]] auto w2 = ::write(fd, b.data(), len);
}
// Empty when the writer died first.
inline transport::AddressBlob readBlob(int fd) {
  uint32_t len = 0;
  if (::read(fd, &len, 4) != 4) return {};
  transport::AddressBlob b(len);
  if (::read(fd, b.data(), len) != ssize_t(len)) return {};
  return b;
}

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

}  // namespace eccl::testing
