#include "transport/libfabric/shm_endpoint_keeper.h"

namespace eccl::transport::ofi {

ShmEndpointKeeper& ShmEndpointKeeper::process() {
  static auto* keeper = new ShmEndpointKeeper;  // (see the header: never destroyed)
  return *keeper;
}

void ShmEndpointKeeper::opened(const std::string& name) {
  std::lock_guard lock(mu_);
  live_.try_emplace(name);  // (names carry a growing index: never one seen before)
}

bool ShmEndpointKeeper::refer(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (from == to) return true;
  if (closed_.count(to)) return false;
  auto self = live_.find(from);
  auto peer = live_.find(to);
  if (self == live_.end() || !self->second.open || peer == live_.end()) return true;  // not ours to track
  self->second.links.insert(to);
  peer->second.links.insert(from);
  peer->second.openLinks.insert(from);
  if (peer->second.open) self->second.openLinks.insert(to);  // (a parked one touches nothing)
  return true;
}

void ShmEndpointKeeper::release(const std::string& name, std::shared_ptr<void> objects) {
  std::vector<std::shared_ptr<void>> doomed{std::move(objects)};
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(name);
    if (it == live_.end() || !it->second.open) return;  // unknown: `doomed` closes it below
    doomed.reserve(1 + it->second.links.size());
    it->second.open = false;
    it->second.parked = std::move(doomed.front());
    doomed.clear();
    // A released endpoint is never progressed again: it no longer touches anyone's region.
    for (const std::string& other : it->second.links) {
      auto peer = live_.find(other);
      if (peer == live_.end()) continue;
      peer->second.openLinks.erase(name);
      if (!peer->second.open && peer->second.openLinks.empty()) close(peer, doomed);
    }
    if (it->second.openLinks.empty()) close(it, doomed);
  }
  doomed.clear();  // outside the lock: fi_close may take a while
}

void ShmEndpointKeeper::close(std::map<std::string, Entry>::iterator it, std::vector<std::shared_ptr<void>>& out) {
  out.push_back(std::move(it->second.parked));
  closed_.insert(it->first);
  live_.erase(it);
}

bool ShmEndpointKeeper::isParked(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(name);
  return it != live_.end() && !it->second.open;
}

size_t ShmEndpointKeeper::parkedCount() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [name, e] : live_) n += !e.open;
  return n;
}

}  // namespace eccl::transport::ofi
