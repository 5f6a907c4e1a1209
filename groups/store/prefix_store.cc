#include "groups/store/prefix_store.h"

#include "base/error.h"

namespace eccl {

PrefixStore::PrefixStore(std::shared_ptr<Store> base, std::string prefix)
    : base_(std::move(base)), prefix_(std::move(prefix)) {
  if (!base_) throw Error(ErrorCode::kInvalidArgument, "PrefixStore '" + prefix_ + "' needs a store");
  if (prefix_.empty()) throw Error(ErrorCode::kInvalidArgument, "PrefixStore prefix must not be empty");
}

std::vector<std::string> PrefixStore::full(const std::vector<std::string>& keys) const {
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (auto& k : keys) out.push_back(full(k));
  return out;
}

void PrefixStore::set(const std::string& key, ByteView value) { base_->set(full(key), value); }
Bytes PrefixStore::get(const std::string& key, StoreTimeout timeout) { return base_->get(full(key), timeout); }
std::optional<Bytes> PrefixStore::tryGet(const std::string& key) { return base_->tryGet(full(key)); }
bool PrefixStore::check(const std::vector<std::string>& keys) { return base_->check(full(keys)); }
int64_t PrefixStore::add(const std::string& key, int64_t delta) { return base_->add(full(key), delta); }
CompareSetResult PrefixStore::compareSet(const std::string& key, ByteView expected, ByteView desired) {
  return base_->compareSet(full(key), expected, desired);
}
void PrefixStore::wait(const std::vector<std::string>& keys, StoreTimeout timeout) { base_->wait(full(keys), timeout); }
bool PrefixStore::deleteKey(const std::string& key) { return base_->deleteKey(full(key)); }
std::vector<Bytes> PrefixStore::multiGet(const std::vector<std::string>& keys, StoreTimeout timeout) {
  return base_->multiGet(full(keys), timeout);
}
void PrefixStore::multiSet(const std::vector<std::string>& keys, const std::vector<Bytes>& values) {
  base_->multiSet(full(keys), values);
}
void PrefixStore::append(const std::string& key, ByteView value) { base_->append(full(key), value); }

}  // namespace eccl
