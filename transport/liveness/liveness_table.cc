#include "transport/liveness/liveness_table.h"

namespace eccl::transport {

LivenessTable::LivenessTable(int size, int self, Millis timeout, Clock::time_point now)
    : self_(self), timeout_(timeout), lastHeard_(size, now), gone_(size, false) {}

void LivenessTable::heard(int peer, Clock::time_point at) {
  if (at > lastHeard_[peer]) lastHeard_[peer] = at;
}

void LivenessTable::left(int peer) { gone_[peer] = true; }

bool LivenessTable::fail(int peer, const std::string& evidence) {
  if (peer == self_ || failures_.count(peer)) return false;
  failures_.emplace(peer, evidence);
  return true;
}

std::vector<int> LivenessTable::silentPeers(Clock::time_point now) const {
  std::vector<int> out;
  if (timeout_ <= Millis(0)) return out;
  for (int p = 0; p < static_cast<int>(lastHeard_.size()); ++p)
    if (p != self_ && !gone_[p] && !failures_.count(p) && now - lastHeard_[p] > timeout_) out.push_back(p);
  return out;
}

}  // namespace eccl::transport
