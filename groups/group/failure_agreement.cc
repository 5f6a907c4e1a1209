#include "groups/group/failure_agreement.h"

#include <algorithm>

#include "base/error.h"

namespace eccl {

void FailureAgreement::addView(int rank, const std::set<int>& failed) {
  if (rank < 0 || rank >= size_) return;
  auto& view = views_[rank];
  if (!view) view.emplace();
  for (int r : failed)
    if (r >= 0 && r < size_ && r != rank) view->insert(r);
}

std::set<int> FailureAgreement::namedByTrusted(int* trusted) const {
  std::vector<int> accusers(size_, 0), posters;
  for (int r = 0; r < size_; ++r) {
    if (!views_[r]) continue;
    posters.push_back(r);
    for (int x : *views_[r]) accusers[x]++;
  }
  std::stable_sort(posters.begin(), posters.end(), [&](int a, int b) { return accusers[a] < accusers[b]; });
  std::set<int> named;
  int count = 0;
  for (int r : posters) {
    if (named.count(r)) continue;  // a trusted poster says it failed: its own view does not count
    named.insert(views_[r]->begin(), views_[r]->end());
    ++count;
  }
  if (trusted) *trusted = count;
  return named;
}

bool FailureAgreement::quorum() const {
  int trusted = 0;
  namedByTrusted(&trusted);
  return 2 * trusted >= size_;
}

std::vector<int> FailureAgreement::awaited() const {
  const auto named = namedByTrusted();
  std::vector<int> out;
  for (int r = 0; r < size_; ++r)
    if (!views_[r] && !named.count(r)) out.push_back(r);
  return out;
}

std::set<int> FailureAgreement::decide() const {
  std::set<int> failed = namedByTrusted();
  for (int r = 0; r < size_; ++r)
    if (!views_[r]) failed.insert(r);
  return failed;
}

std::string encodeRankSet(const std::set<int>& ranks) {
  std::string out;
  for (int r : ranks) {
    if (!out.empty()) out += ',';
    out += std::to_string(r);
  }
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
