// The rendezvous store interface: a shared key → bytes map that ranks use to find each other.
// Implemented by TcpStoreClient (talks to a TcpStoreServer) and PrefixStore (namespaces keys).
//
// Blocking calls take an optional timeout; std::nullopt means the store's default (300 s, or
// $ECCL_STORE_TIMEOUT in seconds). A timeout throws Error(kTimeout) naming the key(s) and the
// store address. Implementations are thread-safe (calls on one object are serialized).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eccl {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;
using StoreTimeout = std::optional<std::chrono::milliseconds>;

inline ByteView asBytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
inline std::string toString(const Bytes& b) { return {b.begin(), b.end()}; }

struct CompareSetResult {
  bool swapped = false;  // true when `desired` was stored
  Bytes current;         // the value stored afterwards (empty when the key is absent)
};

class Store {
 public:
  virtual ~Store() = default;

  virtual void set(const std::string& key, ByteView value) = 0;
  // Waits until `key` exists, then returns its value.
  virtual Bytes get(const std::string& key, StoreTimeout timeout = std::nullopt) = 0;
  // The value if `key` exists now; never waits.
  virtual std::optional<Bytes> tryGet(const std::string& key) = 0;
  // True when every key exists now; never waits.
  virtual bool check(const std::vector<std::string>& keys) = 0;
  // Atomically adds `delta` to the decimal counter at `key` (absent = 0); returns the new value.
  virtual int64_t add(const std::string& key, int64_t delta) = 0;
  // Stores `desired` if the value equals `expected` (or the key is absent and `expected` is empty).
  virtual CompareSetResult compareSet(const std::string& key, ByteView expected, ByteView desired) = 0;
  // Waits until every key exists.
  virtual void wait(const std::vector<std::string>& keys, StoreTimeout timeout = std::nullopt) = 0;
  // Removes `key`; true if it existed.
  virtual bool deleteKey(const std::string& key) = 0;
  // Waits until every key exists, then returns their values in order.
  virtual std::vector<Bytes> multiGet(const std::vector<std::string>& keys, StoreTimeout timeout = std::nullopt) = 0;
  // Sets keys[i] = values[i] atomically with respect to other commands.
  virtual void multiSet(const std::vector<std::string>& keys, const std::vector<Bytes>& values) = 0;
  // Appends to the value at `key`, creating it when absent.
  virtual void append(const std::string& key, ByteView value) = 0;
  // Number of keys in the whole store (not only under a prefix).
  virtual int64_t numKeys() = 0;

  // Where the store is, for error messages ("127.0.0.1:29500", plus a prefix if any).
  virtual std::string describe() const = 0;
};

}  // namespace eccl
