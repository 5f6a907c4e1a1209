#include "groups/group/failure_agreement.h"

#include "base/error.h"

namespace eccl {

void FailureAgreement::addView(int rank, const std::set<int>& failed) {
  if (rank < 0 || rank >= size_) return;
  posted_[rank] = true;
  for (int r : failed)
    if (r >= 0 && r < size_ && r != rank) named_.insert(r);
}

std::vector<int> FailureAgreement::awaited() const {
  std::vector<int> out;
  for (int r = 0; r < size_; ++r)
    if (!posted_[r] && !named_.count(r)) out.push_back(r);
  return out;
}

std::set<int> FailureAgreement::decide() const {
  std::set<int> failed = named_;
  for (int r = 0; r < size_; ++r)
    if (!posted_[r]) failed.insert(r);
  return failed;
}

std::string encodeRankSet(const std::set<int>& ranks) {
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ",") + std::to_string(r);
  return out;
}

std::set<int> decodeRankSet(const std::string& s) {
  std::set<int> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t end = s.find(',', at);
    if (end == std::string::npos) end = s.size();
    const std::string item = s.substr(at, end - at);
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 9)
      throw Error(ErrorCode::kProtocol, "malformed rank list '" + s + "' in the store");
    out.insert(std::stoi(item));
    at = end + 1;
  }
  return out;
}

std::string RecoveryDecision::encode() const { return "epoch=" + std::to_string(epoch) + ";failed=" + encodeRankSet(failed); }

RecoveryDecision RecoveryDecision::decode(const std::string& s) {
  const size_t semi = s.find(";failed=");
  if (s.rfind("epoch=", 0) != 0 || semi == std::string::npos || semi == 6 ||
      s.substr(6, semi - 6).find_first_not_of("0123456789") != std::string::npos)
    throw Error(ErrorCode::kProtocol, "malformed recovery decision '" + s + "' in the store");
  RecoveryDecision d;
  d.epoch = std::stoull(s.substr(6, semi - 6));
  d.failed = decodeRankSet(s.substr(semi + 8));
  return d;
}

std::vector<int> RecoveryDecision::oldToNew(int oldSize) const {
  std::vector<int> map(oldSize, -1);
  int next = 0;
  for (int r = 0; r < oldSize; ++r)
    if (!failed.count(r)) map[r] = next++;
  return map;
}

}  // namespace eccl
