#include "groups/group/elastic_group.h"

#include <set>

#include "groups/group/group_recovery.h"

#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"

namespace eccl {

std::unique_ptr<ElasticGroup> ElasticGroup::join(std::shared_ptr<Store> store, const std::string& name, int rank,
                                                 int size, GroupOptions options) {
  auto g = StatelessGroup::create(store, name, rank, size, options);
  return std::unique_ptr<ElasticGroup>(new ElasticGroup(std::move(store), name, std::move(options), std::move(g)));
}

ElasticGroup::~ElasticGroup() {
  for (auto& f : abandoned_) {
    try {
      f.get();
    } catch (...) {
    }
  }
  if (standby_.valid()) {
    try {
      standby_.get();  // let the build finish (or fail) before the store goes away
    } catch (...) {
    }
  }
}

Communicator& ElasticGroup::comm() {
  if (!active_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': " + leftReason_);
  return active_->comm();
}

void ElasticGroup::prepare(const Reconfiguration& plan) {
  if (!active_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': " + leftReason_);
  if (plan_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': epoch " + std::to_string(epoch() + 1) + " is already being prepared");
  if (static_cast<int>(plan.oldToNew.size()) != size())
    throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': the plan maps " + std::to_string(plan.oldToNew.size()) +
                                                 " ranks but the group has " + std::to_string(size()));
  std::set<int> seen;
  for (size_t r = 0; r < plan.oldToNew.size(); ++r) {
    int n = plan.oldToNew[r];
    if (n < -1 || n >= plan.newSize || (n >= 0 && !seen.insert(n).second))
      throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': the plan maps rank " + std::to_string(r) + " to " +
                                                   std::to_string(n) + ", which is out of range or taken (new size " +
                                                   std::to_string(plan.newSize) + ")");
  }
  plan_ = plan;
  const int next = nextRank();
  if (next < 0) return;  // leaving: nothing to build
  GroupOptions o = options_;
  o.epoch = epoch() + 1;
  auto store = store_;
  auto name = name_;
  const int newSize = plan.newSize;
  standby_ = std::async(std::launch::async, [store, name, next, newSize, o] {
    nameThisThread("eccl-standby");
    return StatelessGroup::create(store, name, next, newSize, o);
  });
}

int ElasticGroup::nextRank() const { return plan_ ? plan_->oldToNew[rank()] : rank(); }

int ElasticGroup::newRankOf(int oldRank) const {
  if (!plan_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': no reconfiguration has been prepared");
  if (oldRank < 0 || oldRank >= static_cast<int>(plan_->oldToNew.size()))
    throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': rank " + std::to_string(oldRank) + " is not in epoch " + std::to_string(epoch()));
  return plan_->oldToNew[oldRank];
}

bool ElasticGroup::standbyReady() const {
  return standbyGroup_ != nullptr || (standby_.valid() && standby_.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
}

Communicator& ElasticGroup::standbyComm() {
  if (!plan_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': no reconfiguration has been prepared");
  if (nextRank() < 0) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': this rank is leaving; it has no standby group");
  if (!standbyGroup_) standbyGroup_ = standby_.get();
  return standbyGroup_->comm();
}

bool ElasticGroup::switchOver() {
  if (!active_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': " + leftReason_);
  if (!plan_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': switchOver without prepare");
  // Every collective issued on the old epoch has finished on every rank once this returns.
  active_->comm().barrier();
  const int next = nextRank();
  const uint64_t oldEpoch = epoch();
  std::unique_ptr<StatelessGroup> fresh;
  if (next >= 0) fresh = standbyGroup_ ? std::move(standbyGroup_) : standby_.get();  // rethrows a failed build's error
  logger().info("group '{}': rank {} of epoch {} -> {}", name_, rank(), oldEpoch,
                next >= 0 ? "rank " + std::to_string(next) + " of epoch " + std::to_string(oldEpoch + 1) : "leaving");
  active_->destroy();
  active_ = std::move(fresh);
  plan_.reset();
  if (!active_) {
    leftReason_ = "this process left at epoch " + std::to_string(oldEpoch + 1) + " (it is not in the new membership)";
    return false;
  }
  return true;
}

// A standby build may be waiting for a rank that died: tell its builders to give up (they poll
// the epoch's "conflict" key) and keep the future, whose destructor waits for that.
void ElasticGroup::abandonStandby() {
  standbyGroup_.reset();
  if (standby_.valid()) {
    callOffGroupBuild(store_, name_, epoch() + 1,
                      "group '" + name_ + "': epoch " + std::to_string(epoch() + 1) + " was abandoned for a recovery");
    abandoned_.push_back(std::move(standby_));
  }
  plan_.reset();
  // Builds called off earlier that have ended: let their groups (threads, sockets) go now.
  std::erase_if(abandoned_, [](auto& f) {
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
    try {
      f.get();
    } catch (...) {
    }
    return true;
  });
}

RecoveryResult ElasticGroup::recover(RecoveryOptions options) {
  if (!active_) throw Error(ErrorCode::kInvalidArgument, "group '" + name_ + "': " + leftReason_);
  const auto started = std::chrono::steady_clock::now();
  auto seconds = [](auto from) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count(); };
  RecoveryResult result;
  result.oldEpoch = epoch();
  const int oldRank = rank(), oldSize = size();
  auto failed = active_->comm().failedRanks();
  std::set<int> known(failed.begin(), failed.end());
  // Members that have not noticed yet stop what they are doing and join in.
  active_->comm().revoke("rank " + std::to_string(oldRank) + " is recovering", failed);
  abandonStandby();
  const auto heartbeat = transport::resolveHeartbeatTimeout(options_.heartbeat);
  AgreementRound round{name_, result.oldEpoch, 0, oldRank, oldSize, 0,
                       options.joinTimeout.value_or(std::max<std::chrono::milliseconds>(heartbeat, std::chrono::seconds(1)))};
  std::string lastError;
  for (; round.round < options.maxRounds; ++round.round) {
    round.newEpoch = result.oldEpoch + 2 + round.round;  // (+1 may be a standby epoch left half built)
    const auto agreeStart = std::chrono::steady_clock::now();
    // The old epoch's heartbeat monitor still watches every old rank: one that dies now is named.
    RecoveryDecision d = agreeOnFailures(store_, round, [&] {
      std::set<int> now = known;
      for (int r : active_->comm().failedRanks()) now.insert(r);
      return now;
    });
    result.agreeSeconds += seconds(agreeStart);
    if (d.failed.count(oldRank)) {
      active_->destroy();
      active_.reset();
      leftReason_ = "the other ranks declared rank " + std::to_string(oldRank) + " of epoch " + std::to_string(result.oldEpoch) +
                    " failed (failed ranks: " + encodeRankSet(d.failed) + "): this process is out of the group";
      throw Error(ErrorCode::kAborted, "group '" + name_ + "': " + leftReason_);
    }
    result.oldToNew = d.oldToNew(oldSize);
    const int newSize = oldSize - static_cast<int>(d.failed.size());
    GroupOptions o = options_;
    o.epoch = d.epoch;
    o.buildTimeout = options.buildTimeout.value_or(std::chrono::seconds(30));
    const auto buildStart = std::chrono::steady_clock::now();
    try {
      // A rank of the new membership that dies now would keep the others waiting for it until
      // buildTimeout: as soon as the old epoch's monitor names one, call the build off for all.
      std::unique_ptr<StatelessGroup> fresh;
      {
        RecoveryBuildWatch watch(store_, name_, d, active_->comm());  // (the old group is destroyed after it)
        const Deadline deadline = Deadline::after(*o.buildTimeout);
        fresh = StatelessGroup::create(store_, name_, result.oldToNew[oldRank], newSize, o);
        if (auto off = agreeOnBuild(store_, name_, d.epoch, result.oldToNew[oldRank], newSize, deadline)) {
          fresh->destroy();
          throw Error(ErrorCode::kAborted, "epoch " + std::to_string(d.epoch) + " was built here but not by every member: " + *off);
        }
      }
      result.buildSeconds += seconds(buildStart);
      active_->destroy();
      active_ = std::move(fresh);
      result.failed.assign(d.failed.begin(), d.failed.end());
      result.epoch = d.epoch;
      result.rounds = round.round + 1;
      logger().warn("group '{}': recovered from the failure of rank(s) {} of epoch {}: rank {} -> rank {} of {} at epoch {} in {:.3f} s",
                    name_, encodeRankSet(d.failed), result.oldEpoch, oldRank, rank(), newSize, d.epoch, seconds(started));
      return result;
    } catch (const Error& e) {
      // Someone died after the agreement: agree again, the new victim missing this time.
      result.buildSeconds += seconds(buildStart);
      lastError = e.what();
      known = d.failed;
      callOffGroupBuild(store_, name_, d.epoch,
                        "rank " + std::to_string(oldRank) + " gave up building epoch " + std::to_string(d.epoch) +
                            " during recovery: " + lastError);
      logger().warn("group '{}': recovery round {} could not build epoch {}: {}", name_, round.round, d.epoch, lastError);
    }
  }
  throw Error(ErrorCode::kAborted, "group '" + name_ + "': recovery gave up after " + std::to_string(options.maxRounds) +
                                       " rounds; last: " + lastError);
}

}  // namespace eccl
