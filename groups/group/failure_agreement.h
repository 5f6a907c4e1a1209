// How the survivors of a failure agree on one failed set (pure logic; the store I/O is in
// group_recovery.cc). Each survivor posts its view — the ranks it knows failed — for the old
// epoch. A rank is waited for until it posts or a trusted view names it; then the first survivor
// to decide writes the decision with compare-and-set, and everyone adopts that one:
//   failed = ranks that posted no view (by the deadline) ∪ every rank a trusted view names.
// Trust settles accusations between posters: posters are taken by how many others name them
// (fewest first, then rank), and one is trusted unless a trusted poster names it. So a rank cut
// off from the rest — which finds every connection closed and names everyone — is outvoted, not
// the cause of everyone's exclusion; of two ranks that only name each other, the lower one
// stays. Nobody decides without a quorum — trusted posters making up at least half the old group
// — so a rank cut off alone cannot decide that everyone else failed (it waits for the others'
// decision, then gives up: it is out). Recovery therefore needs half the ranks alive. A rank
// named failed that is in fact alive (frozen a while, cut off) learns it is out when it reads
// the decision. Survivors keep their order: new rank = position among them.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace eccl {

class FailureAgreement {
 public:
  explicit FailureAgreement(int size) : size_(size), views_(size) {}

  // Rank `rank` posted (or grew) its view naming `failed` (ranks outside the group and itself
  // are ignored; a later view adds to the earlier one).
  void addView(int rank, const std::set<int>& failed);
  bool posted(int rank) const { return views_[rank].has_value(); }
  // Ranks still awaited: no view yet, and no trusted view names them.
  std::vector<int> awaited() const;
  // True when trusted posters make up at least half the group: a decision may be written.
  bool quorum() const;
  // The failed set as decided now (call when awaited() is empty or at the deadline, with a quorum).
  std::set<int> decide() const;


 private:
  // Ranks named by trusted posters; `trusted` (if given) receives how many posters are trusted.
  std::set<int> namedByTrusted(int* trusted = nullptr) const;
  int size_;
  std::vector<std::optional<std::set<int>>> views_;
};

// The agreed outcome, as stored under the decision key.
struct RecoveryDecision {
  uint64_t epoch = 0;      // the epoch the survivors build
  std::set<int> failed;    // old ranks
  std::string encode() const;  // "epoch=<n>;failed=1,2"
  static RecoveryDecision decode(const std::string& s);
  // Per old rank: its rank among the survivors, or −1 for a failed one.
  std::vector<int> oldToNew(int oldSize) const;
};

std::string encodeRankSet(const std::set<int>& ranks);  // "1,2" ("" when empty)
std::set<int> decodeRankSet(const std::string& s);      // throws Error(kProtocol) on garbage

}  // namespace eccl
