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
  return guarded([&] {
    auto& e = elasticOf(group);
    out(comm, "comm") = nullptr;
    std::lock_guard lock(e.mu);
    if (!e.active) {
      e.active = newCommHandle(nullptr, &e.group->comm());  // throws when this rank left
      e.active->owner = &e;
    }
    *comm = e.active;
  });
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
  return guarded([&] {
    auto& e = elasticOf(group);
    out(comm, "comm") = nullptr;
    std::lock_guard lock(e.mu);
    if (!e.standby) {
      e.standby = newCommHandle(nullptr, &e.group->standbyComm());
      e.standby->owner = &e;
    }
    *comm = e.standby;
  });
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
