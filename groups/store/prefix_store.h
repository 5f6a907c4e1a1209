// A Store view that puts every key under "<prefix>/": groups and epochs share one server without
// seeing each other's keys (e.g. PrefixStore(store, "moe_ep/3") → "moe_ep/3/addr/0").
// Holds a shared reference to the underlying store; thread-safe like it.
#pragma once

#include <memory>

#include "groups/store/store.h"

namespace eccl {

class PrefixStore final : public Store {
 public:
  PrefixStore(std::shared_ptr<Store> base, std::string prefix);

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
  int64_t numKeys() override { return base_->numKeys(); }
  std::string describe() const override { return base_->describe() + " (prefix '" + prefix_ + "')"; }

  const std::string& prefix() const { return prefix_; }
  const std::shared_ptr<Store>& base() const { return base_; }

 private:
  std::string full(const std::string& key) const { return prefix_ + "/" + key; }
  std::vector<std::string> full(const std::vector<std::string>& keys) const;

  std::shared_ptr<Store> base_;
  std::string prefix_;
};

}  // namespace eccl
