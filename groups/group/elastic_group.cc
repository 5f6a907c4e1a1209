#include "groups/group/elastic_group.h"

#include <set>

#include "base/error.h"
#include "base/logging.h"

namespace eccl {

std::unique_ptr<ElasticGroup> ElasticGroup::join(std::shared_ptr<Store> store, const std::string& name, int rank,
                                                 int size, GroupOptions options) {
  auto g = StatelessGroup::create(store, name, rank, size, options);
  return std::unique_ptr<ElasticGroup>(new ElasticGroup(std::move(store), name, std::move(options), std::move(g)));
}

ElasticGroup::~ElasticGroup() {
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

}  // namespace eccl
