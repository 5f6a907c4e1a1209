// The C API's elastic groups: join, prepare the next epoch while the active one serves, switch.
#include "groups/capi/capi_internal.h"

using namespace eccl;
using namespace eccl::capi;

namespace eccl::capi {

ecclElastic& elasticOf(ecclElastic_t group) {
  requireLive(group, "elastic group");
  return *group;
}

ecclElastic_t newElasticHandle(std::unique_ptr<ElasticGroup> group) {
  auto h = std::make_unique<ecclElastic>();
  h->group = std::move(group);
  track(h.get(), "elastic group");
  return h.release();
}

void requireNoEplb(const std::atomic<int>& eplbs, const char* what) {
  if (eplbs.load() > 0)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": an eplb runs on it (" + std::to_string(eplbs.load()) +
                                                 "); switch through ecclEplbElasticStep, and destroy the eplb first");
}

void dropCommHandles(ecclElastic& e) {
  for (ecclComm_t* c : {&e.active, &e.standby}) {
    if (*c) freeCommHandle(*c);
    *c = nullptr;
  }
}

}  // namespace eccl::capi

namespace {

// The borrowed handle in `slot` of the group, made on first use from `which(group)` (which
// throws when this rank left, or nothing is prepared).
template <class Which>
ecclResult_t borrowedComm(ecclElastic_t group, ecclComm_t ecclElastic::*slot, Which which, ecclComm_t* comm) {
  return guarded([&] {
    auto& e = elasticOf(group);
    out(comm, "comm") = nullptr;
    std::lock_guard lock(e.mu);
    if (!(e.*slot)) {
      e.*slot = newCommHandle(nullptr, &which(*e.group));
      (e.*slot)->owner = &e;
    }
    *comm = e.*slot;
  });
}

}  // namespace

extern "C" {

ecclResult_t ecclElasticJoin(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t rank, uint32_t nRanks,
                             ecclElastic_t* group) {
  return guarded([&] {
    out(group, "group") = nullptr;
    storeOf(store);
    *group = newElasticHandle(ElasticGroup::join(store->store, text(groupName, "groupName"), int(rank), int(nRanks), {.epoch = epoch}));
  });
}

ecclResult_t ecclElasticComm(ecclElastic_t group, ecclComm_t* comm) {
  return borrowedComm(group, &ecclElastic::active, [](ElasticGroup& g) -> Communicator& { return g.comm(); }, comm);
}

ecclResult_t ecclElasticEpoch(ecclElastic_t group, uint64_t* epoch) {
  return guarded([&] {
    auto& e = elasticOf(group);
    if (!e.group->member()) throw Error(ErrorCode::kInvalidArgument, "this rank left the elastic group");
    out(epoch, "epoch") = e.group->epoch();
  });
}

ecclResult_t ecclElasticPrepare(ecclElastic_t group, uint32_t newSize, const int32_t* oldToNew, uint32_t oldSize) {
  return guarded([&] {
    auto& e = elasticOf(group);
    if (oldToNew == nullptr && oldSize > 0) throw Error(ErrorCode::kInvalidArgument, "oldToNew is null");
    e.group->prepare(Reconfiguration{int(newSize), std::vector<int>(oldToNew, oldToNew + oldSize)});
  });
}

ecclResult_t ecclElasticNextRank(ecclElastic_t group, int32_t* rank) {
  return guarded([&] { out(rank, "rank") = elasticOf(group).group->nextRank(); });
}

ecclResult_t ecclElasticStandbyComm(ecclElastic_t group, ecclComm_t* comm) {
  return borrowedComm(group, &ecclElastic::standby, [](ElasticGroup& g) -> Communicator& { return g.standbyComm(); }, comm);
}

ecclResult_t ecclElasticSwitch(ecclElastic_t group, int* member) {
  return guarded([&] {
    auto& e = elasticOf(group);
    requireNoEplb(e.eplbs, "ecclElasticSwitch");
    std::lock_guard lock(e.mu);
    const bool stays = e.group->switchOver();
    dropCommHandles(e);
    if (member) *member = stays ? 1 : 0;
  });
}

ecclResult_t ecclElasticRecover(ecclElastic_t group, int32_t* oldToNew, uint32_t capacity, ecclRecoveryInfo* info) {
  return guarded([&] {
    auto& e = elasticOf(group);
    requireNoEplb(e.eplbs, "ecclElasticRecover");
    if (!e.group->member()) throw Error(ErrorCode::kInvalidArgument, "this rank is not in the elastic group any more (it left, or the others declared it failed)");
    const auto oldSize = static_cast<uint32_t>(e.group->size());
    if (oldToNew && capacity < oldSize)
      throw Error(ErrorCode::kInvalidArgument, "oldToNew has room for " + std::to_string(capacity) + " ranks, the group has " +
                                                   std::to_string(oldSize));
    std::lock_guard lock(e.mu);
    const int oldRank = e.group->rank();
    dropCommHandles(e);
    RecoveryResult r = e.group->recover();
    if (oldToNew) std::copy(r.oldToNew.begin(), r.oldToNew.end(), oldToNew);
    if (info) *info = recoveryInfo(r, oldRank, e.group->rank(), e.group->size());
  });
}

ecclResult_t ecclElasticDestroy(ecclElastic_t group) {
  return guarded([&] {
    auto& e = elasticOf(group);
    requireNoEplb(e.eplbs, "ecclElasticDestroy");
    {
      std::lock_guard lock(e.mu);
      dropCommHandles(e);
    }
    untrack(group);
    delete group;
  });
}

}  // extern "C"
