#include "groups/group/group_recovery.h"

#include <thread>

#include "base/deadline.h"
#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "groups/group/stateless_group.h"
#include "groups/store/prefix_store.h"

namespace eccl {

RecoveryDecision agreeOnFailures(const std::shared_ptr<Store>& store, const AgreementRound& round,
                                 const std::function<std::set<int>()>& knownFailed) {
  PrefixStore ps(store, round.name + "/recover/" + std::to_string(round.oldEpoch) + "/" + std::to_string(round.round));
  std::set<int> failed = knownFailed();
  ps.set("view/" + std::to_string(round.rank), asBytes(encodeRankSet(failed)));
  FailureAgreement agreement(round.size);
  agreement.addView(round.rank, failed);
  const Deadline deadline = Deadline::after(round.joinTimeout);
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (auto d = ps.tryGet("decision")) return RecoveryDecision::decode(toString(*d));
    const size_t before = failed.size();
    for (int r : knownFailed()) failed.insert(r);
    if (failed.size() != before) {
      ps.set("view/" + std::to_string(round.rank), asBytes(encodeRankSet(failed)));
      agreement.addView(round.rank, failed);
    }
    for (int r = 0; r < round.size; ++r)
      if (r != round.rank)  // (views may grow: re-read them)
        if (auto v = ps.tryGet("view/" + std::to_string(r))) agreement.addView(r, decodeRankSet(toString(*v)));
    if (agreement.quorum() && (agreement.awaited().empty() || deadline.expired())) break;
    if (deadline.expired() && Clock::now() > deadline.at() + round.joinTimeout) {
      // No quorum and nobody decided: this rank is cut off from (most of) the others.
      int posted = 0;
      for (int r = 0; r < round.size; ++r) posted += agreement.posted(r);
      throw Error(ErrorCode::kAborted, "group '" + round.name + "' epoch " + std::to_string(round.oldEpoch) +
                                           ": recovery needs at least half the ranks; rank " + std::to_string(round.rank) +
                                           " saw " + std::to_string(posted) + " of " + std::to_string(round.size) +
                                           " take part and no decision: it is cut off (or too many ranks failed)");
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(pause, deadline.expired() ? std::chrono::milliseconds(50) : deadline.remaining()));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  RecoveryDecision mine{round.newEpoch, agreement.decide()};
  if (!agreement.awaited().empty())
    logger().warn("group '{}' epoch {}: no view from rank(s) {} within {} ms: counted as failed", round.name, round.oldEpoch,
                  encodeRankSet({agreement.awaited().begin(), agreement.awaited().end()}), round.joinTimeout.count());
  auto r = ps.compareSet("decision", {}, asBytes(mine.encode()));
  return RecoveryDecision::decode(toString(r.current));
}

std::optional<std::string> agreeOnBuild(const std::shared_ptr<Store>& store, const std::string& name, uint64_t epoch, int rank,
                                        int size, Deadline deadline) {
  PrefixStore ps(store, name + "/" + std::to_string(epoch));
  ps.set("built/" + std::to_string(rank), asBytes("1"));
  std::vector<std::string> built;
  for (int r = 0; r < size; ++r) built.push_back("built/" + std::to_string(r));
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    std::optional<std::string> proposal;
    if (auto outcome = ps.tryGet("outcome")) proposal = toString(*outcome);
    else if (ps.check(built)) proposal = "ok";
    else if (auto conflict = ps.tryGet("conflict")) proposal = "off: " + toString(*conflict);
    else if (deadline.expired()) proposal = "off: not every member built epoch " + std::to_string(epoch) + " in time";
    if (proposal) {
      const std::string outcome = toString(ps.compareSet("outcome", {}, asBytes(*proposal)).current);
      if (outcome == "ok") return std::nullopt;
      return outcome.substr(outcome.rfind("off: ", 0) == 0 ? 5 : 0);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

RecoveryBuildWatch::RecoveryBuildWatch(std::shared_ptr<Store> store, std::string name, RecoveryDecision decision,
                                       const Communicator& old)
    : store_(std::move(store)), name_(std::move(name)), decision_(std::move(decision)), old_(old) {
  thread_ = std::thread([this] {
    nameThisThread("eccl-recovery");
    run();
  });
}

RecoveryBuildWatch::~RecoveryBuildWatch() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RecoveryBuildWatch::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_; })) {
    for (int r : old_.failedRanks()) {
      if (decision_.failed.count(r)) continue;
      callOffGroupBuild(store_, name_, decision_.epoch,
                        "rank " + std::to_string(r) + " of epoch " + std::to_string(decision_.epoch) +
                            "'s membership failed while it was being built");
      return;
    }
  }
}

}  // namespace eccl
