// A group that changes membership without a restart, by epochs: the active group keeps serving
// while the next epoch is built in the background (a standby group), then every member switches.
//
//   auto g = ElasticGroup::join(store, "ep", rank, size);   // first start (epoch 0, options.epoch)
//   g->prepare(Reconfiguration{newSize, oldToNew});   // all current members; builds epoch+1 in the background
//   ... keep running collectives on g->comm() ...
//   bool stay = g->switchOver();                     // drains the old epoch, swaps, destroys it
//
// New processes join the next epoch directly: ElasticGroup::join(store, "ep", rank, size, {.epoch = epoch + 1}).
//
// After a rank failure (the communicator revoked, Communicator::failedRanks() naming it), every
// survivor calls recover(): they agree on one failed set through the store and build the next
// epoch without it (see RecoveryResult for the renumbering).
// Thread-safety: one thread drives prepare/switchOver; comm() may be used by others between them.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <vector>

#include "groups/group/stateless_group.h"

namespace eccl {

// The next membership: new size, and for every current rank its rank in the new group (−1 =
// leaving). New ranks that no current rank maps to are for joining processes.
struct Reconfiguration {
  int newSize = 0;
  std::vector<int> oldToNew;
};

struct RecoveryOptions {
  // How long survivors wait for the view of a rank that nobody has named failed (one slow to
  // notice) before counting it failed. nullopt = the heartbeat timeout, at least 1 s.
  std::optional<std::chrono::milliseconds> joinTimeout;
  // Bounds building the new epoch: a rank that dies after the agreement makes the build fail,
  // and recovery runs another round without it. nullopt = 30 s (or comm.timeout if shorter).
  std::optional<std::chrono::milliseconds> buildTimeout;
  int maxRounds = 4;
};

struct RecoveryResult {
  std::vector<int> failed;    // ranks of the old epoch, ascending
  std::vector<int> oldToNew;  // per old rank: its rank now (−1: failed); survivors keep their order
  uint64_t oldEpoch = 0, epoch = 0;
  int rounds = 1;             // > 1 when a rank failed during recovery itself
  double agreeSeconds = 0, buildSeconds = 0;
};

class ElasticGroup {
 public:
  // Joins epoch options.epoch of group `name`.
  static std::unique_ptr<ElasticGroup> join(std::shared_ptr<Store> store, const std::string& name, int rank, int size,
                                            GroupOptions options = {});
  ~ElasticGroup();

  Communicator& comm();
  int rank() const { return active_->rank(); }
  int size() const { return active_->size(); }
  uint64_t epoch() const { return active_->epoch(); }
  bool member() const { return active_ != nullptr; }

  // Starts building epoch()+1 for this rank's new rank (nothing to build when it leaves).
  // Throws Error(kInvalidArgument) naming the problem for a malformed plan.
  void prepare(const Reconfiguration& plan);
  // This rank's rank in the prepared epoch (−1: leaving), and the mapping of any old rank.
  int nextRank() const;
  int newRankOf(int oldRank) const;
  bool standbyReady() const;
  // The prepared epoch's communicator, waiting for its build (rethrowing a failed build's error);
  // for moving state to joining ranks before switchOver(). Throws Error(kInvalidArgument) when
  // nothing is prepared or this rank is leaving.
  Communicator& standbyComm();
  // Barrier on the old epoch (every operation issued before it has finished everywhere), then
  // the standby group becomes active and the old one is destroyed. Returns false when this rank
  // is not in the new membership; the group is then closed and comm() throws saying so.
  bool switchOver();

  // Recovery from failed ranks: revokes the active epoch (so every member joins in), agrees with
  // the other survivors on the failed set, builds the next epoch without it (renumbered, in
  // order) and makes it active; the old one is destroyed, a prepared reconfiguration dropped.
  // Every survivor must call it, after destroying what uses the group's communicators (updaters,
  // transitions, loaders). Throws Error(kAborted) on a rank the others declared failed
  // (the group is then closed), and the store's error when the store is unreachable.
  RecoveryResult recover(RecoveryOptions options = {});

 private:
  void abandonStandby();
  ElasticGroup(std::shared_ptr<Store> store, std::string name, GroupOptions options, std::unique_ptr<StatelessGroup> active)
      : store_(std::move(store)), name_(std::move(name)), options_(std::move(options)), active_(std::move(active)) {}
  std::shared_ptr<Store> store_;
  std::string name_;
  GroupOptions options_;
  std::unique_ptr<StatelessGroup> active_;
  std::optional<Reconfiguration> plan_;
  std::future<std::unique_ptr<StatelessGroup>> standby_;
  std::unique_ptr<StatelessGroup> standbyGroup_;  // standby_'s result once taken
  std::vector<std::future<std::unique_ptr<StatelessGroup>>> abandoned_;  // builds called off by recover()
  std::string leftReason_;
};

}  // namespace eccl
