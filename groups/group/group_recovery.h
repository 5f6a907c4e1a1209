// The store side of failure agreement (FailureAgreement): survivors of epoch `oldEpoch` of group
// `name` post their views under "<name>/recover/<oldEpoch>/<round>/view/<rank>", wait for the
// ranks nobody named, and adopt the first decision written under ".../decision".
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <thread>
#include <set>
#include <string>

#include "base/deadline.h"
#include "comm/communicator.h"
#include "groups/group/failure_agreement.h"
#include "groups/store/store.h"

namespace eccl {

struct AgreementRound {
  std::string name;
  uint64_t oldEpoch = 0;
  int round = 0;
  int rank = 0, size = 0;     // in the old epoch
  uint64_t newEpoch = 0;      // what a decision made here builds
  std::chrono::milliseconds joinTimeout{5000};  // wait for ranks nobody named, then count them failed
};

// Posts this rank's view — `knownFailed()`, asked again while waiting, so a rank that dies during
// the agreement is named as soon as this rank learns of it — and returns the round's decision
// (possibly another rank's). Throws Error from the store (unreachable: no recovery without it).
RecoveryDecision agreeOnFailures(const std::shared_ptr<Store>& store, const AgreementRound& round,
                                 const std::function<std::set<int>()>& knownFailed);

// After this rank built the decided epoch: did every member? A member that dies mid-build can
// leave some ranks with the group and others without, so the outcome is decided once, by
// compare-and-set under "<name>/<epoch>/outcome": "ok" once every member posted "built/<rank>",
// else the reason of the first "conflict" (a builder that failed, the watch below) or the
// deadline. Returns nullopt for "ok", else why the build is off (the round must run again).
std::optional<std::string> agreeOnBuild(const std::shared_ptr<Store>& store, const std::string& name, uint64_t epoch, int rank,
                                        int size, Deadline deadline);

// While the survivors build the decided epoch: once the old epoch's communicator (its heartbeat
// monitor still watches every old rank) names a rank the decision did not, calls the build off
// for everyone (callOffGroupBuild), so nobody waits for a dead rank until the build's deadline.
// `old` must outlive it. Stops when destroyed.
class RecoveryBuildWatch {
 public:
  RecoveryBuildWatch(std::shared_ptr<Store> store, std::string name, RecoveryDecision decision, const Communicator& old);
  ~RecoveryBuildWatch();
  RecoveryBuildWatch(const RecoveryBuildWatch&) = delete;
  RecoveryBuildWatch& operator=(const RecoveryBuildWatch&) = delete;

 private:
  void run();
  std::shared_ptr<Store> store_;
  std::string name_;
  RecoveryDecision decision_;
  const Communicator& old_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace eccl
