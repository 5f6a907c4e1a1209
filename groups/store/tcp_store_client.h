// A client of TcpStoreServer implementing Store.
//
// Connects lazily and reconnects after a failure, retrying with backoff while the server is not
// up yet (ranks may start before it), within the call's deadline. Authenticates when the server
// asks for it, with the token from the options or ECCL_STORE_TOKEN / ECCL_STORE_TOKEN_FILE.
// Errors name the key(s) and the server address.
//
// Thread-safety: thread-safe. Concurrent calls use separate connections (a small pool), so a
// blocking GET in one thread never holds up a SET in another.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "groups/store/store.h"
#include "groups/store/store_protocol.h"
#include "base/deadline.h"
#include "transport/socket/address.h"
#include "transport/socket/fd.h"

namespace eccl {

struct TcpStoreClientOptions {
  // Default for every blocking call and for connecting; nullopt = $ECCL_STORE_TIMEOUT or 300 s.
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> token;  // nullopt = from the environment, if set there
  store::StoreLimits limits;
  // How long to busy-poll for a reply before sleeping; nullopt = $ECCL_STORE_SPIN_US or 50 us.
  // Spinning lowers latency; 0 saves CPU when many clients share few cores.
  std::optional<std::chrono::microseconds> spin;
};

class TcpStoreClient final : public Store {
 public:
  // `address` as "host:port" or "[v6]:port". Does not connect yet.
  explicit TcpStoreClient(const std::string& address, TcpStoreClientOptions options = {});
  TcpStoreClient(const SocketAddress& address, TcpStoreClientOptions options = {});

  void set(const std::string& key, ByteView value) override;
  Bytes get(const std::string& key, StoreTimeout timeout = std::nullopt) override;
  std::optional<Bytes> tryGet(const std::string& key) override;
  bool check(const std::vector<std::string>& keys) override;
  int64_t add(const std::string& key, int64_t delta) override;
  CompareSetResult compareSet(const std::string& key, ByteView expected, ByteView desired) override;
  void wait(const std::vector<std::string>& keys, StoreTimeout timeout = std::nullopt) override;
  bool deleteKey(const std::string& key) override;
  std::vector<Bytes> multiGet(const std::vector<std::string>& keys, StoreTimeout timeout = std::nullopt) override;
  void multiSet(const std::vector<std::string>& keys, const std::vector<Bytes>& values) override;
  void append(const std::string& key, ByteView value) override;
  int64_t numKeys() override;
  std::string describe() const override { return address_.str(); }

  // Connects now (optional: every call connects when needed). Throws kConnectFailed / kAuth.
  void connect();
  // Round trip with no side effect; used by health checks and benchmarks.
  void ping();
  std::chrono::milliseconds defaultTimeout() const { return timeout_; }

 private:
  struct Reply {
    store::Status status = store::Status::kError;
    Bytes body;
    std::vector<std::span<const uint8_t>> fields;
  };
  Fd openConnection(Deadline deadline);
  // Sends `request` on a pooled connection and reads one reply. `what` names the command and
  // key(s) for errors.
  Reply roundTrip(const std::vector<uint8_t>& request, const std::string& what, Deadline deadline);
  Reply readFrame(int fd, Deadline deadline, const std::string& what);
  // Encodes a request with `build`, round-trips it under the lock, and checks the reply is OK
  // with `expectFields` fields.
  Reply call(store::Command command, const std::string& what, Deadline deadline,
             const std::function<void(store::FrameWriter&)>& build, size_t expectFields);
  void checkKey(const std::string& key) const;
  void checkValue(const std::string& key, size_t bytes) const;
  Millis resolve(StoreTimeout t) const { return t.value_or(timeout_); }
  [[noreturn]] void fail(const Reply& r, const std::string& what);

  SocketAddress address_;
  Millis timeout_;
  std::optional<std::string> token_;
  store::StoreLimits limits_;
  std::chrono::microseconds spin_;
  std::mutex mu_;
  std::vector<Fd> idle_;  // connected and authenticated, not in use
};

}  // namespace eccl
