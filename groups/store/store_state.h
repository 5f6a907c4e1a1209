// The store's data and command semantics, with no sockets: the server's event loop feeds it
// decoded requests and sends what it writes. Single-threaded (owned by the server's loop thread).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "groups/store/store.h"
#include "groups/store/store_protocol.h"

namespace eccl::store {

// A request that must wait for keys to exist (GET, WAIT, MULTI_GET).
struct WaitRequest {
  Command command;
  std::vector<std::string> keys;
  uint64_t timeoutMs = 0;
};

class StoreState {
 public:
  explicit StoreState(StoreLimits limits) : limits_(limits) {}

  // Executes one request. Either appends the reply frame to `reply` and returns nullopt, or
  // returns the wait the request needs (no reply written). Keys the command created or changed
  // are appended to `changed`. Throws Error(kProtocol) for malformed arguments (wrong field
  // count or width) and Error(kInvalidArgument) for arguments over the limits.
  std::optional<WaitRequest> execute(Command command, std::span<const uint8_t> body,
                                     std::vector<uint8_t>& reply, std::vector<std::string>& changed);

  bool allExist(const std::vector<std::string>& keys) const;
  std::vector<std::string> missing(const std::vector<std::string>& keys) const;
  // Writes the OK reply of a wait whose keys all exist now.
  void replyToWait(const WaitRequest& wait, std::vector<uint8_t>& reply) const;
  // Writes the TIMEOUT reply naming the keys still missing.
  void replyTimeout(const WaitRequest& wait, std::vector<uint8_t>& reply) const;

  size_t size() const { return data_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, Bytes, Hash, std::equal_to<>>;

  std::string key(std::span<const uint8_t> field) const;
  Bytes value(std::span<const uint8_t> field) const;

  StoreLimits limits_;
  Map data_;
};

}  // namespace eccl::store
