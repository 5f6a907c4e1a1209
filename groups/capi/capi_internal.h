// What the C API's translation units share (not installed): the handle structs, the registry
// that tells live handles from stale ones, argument checks, and the exception → result
// translation. The EPLB C API (eplb/capi) builds on it too.
#pragma once

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/error.h"
#include "comm/communicator.h"
#include "groups/capi/eccl.h"
#include "groups/group/elastic_group.h"
#include "groups/group/stateless_group.h"
#include "groups/store/store.h"
#include "groups/store/tcp_store_server.h"

struct ecclMemHandle {
  eccl::RegisteredMemory memory;
};

struct ecclComm {
  std::unique_ptr<eccl::StatelessGroup> group;  // owned; null when borrowed from an elastic group
  eccl::Communicator* comm = nullptr;           // group->comm(), or the elastic group's
  ecclElastic* owner = nullptr;                 // the elastic group a borrowed handle belongs to
  std::atomic<int> eplbs{0};                    // EPLB updaters running on it: it must outlive them
  std::shared_ptr<eccl::TcpStoreServer> server; // rank 0's store, when made by ecclGetRootInfo
  // Registrations, so a handle is checked before use and none outlives the communicator.
  std::mutex handlesMu;
  std::map<ecclMemHandle*, std::unique_ptr<ecclMemHandle>> handles;
};

struct ecclWork {
  eccl::Work work;
};

struct ecclStore {
  std::shared_ptr<eccl::Store> store;
  std::shared_ptr<eccl::TcpStoreServer> server;  // served by this process (ecclBootstrapFromEnv, rank 0)
};

struct ecclElastic {
  std::unique_ptr<eccl::ElasticGroup> group;
  std::mutex mu;                 // the borrowed handles below (threads may ask for them at once)
  ecclComm_t active = nullptr;   // borrowed handle of group->comm(), made on demand
  ecclComm_t standby = nullptr;  // borrowed handle of group->standbyComm(), made on demand
  std::atomic<int> eplbs{0};     // EPLB updaters running on it: it switches only through them
};

struct ecclStoreServer {
  std::unique_ptr<eccl::TcpStoreServer> server;
};

namespace eccl::capi {

// Sets this thread's ecclGetLastError() text.
void setLastError(std::string message);
const char* lastErrorText();
ecclResult_t toResult(ErrorCode c);

// Runs f; an exception becomes a result and the last-error text. No exception crosses the API.
template <class F>
ecclResult_t guarded(F&& f) {
  try {
    f();
    return ecclSuccess;
  } catch (const Error& e) {
    setLastError(e.what());
    return toResult(e.code());
  } catch (const std::exception& e) {
    setLastError(e.what());
    return ecclInternalError;
  }
}

// Handles made and not yet freed, per kind, so a stale or made-up handle is an error, not a
// crash (a handle whose memory a new one reuses cannot be told apart).
void track(const void* handle, const char* kind);
void untrack(const void* handle);
// Throws Error(kInvalidArgument) naming `kind` unless `handle` is live and of that kind.
void requireLive(const void* handle, const char* kind);

eccl::Communicator& commOf(ecclComm_t comm);
ecclComm_t newCommHandle(std::unique_ptr<StatelessGroup> group, Communicator* borrowed,
                         std::shared_ptr<TcpStoreServer> server = nullptr);
void freeCommHandle(ecclComm_t comm);  // untracks and deletes (owned group destroyed)
eccl::Store& storeOf(ecclStore_t store);
ecclElastic& elasticOf(ecclElastic_t group);
// The C view of a recovery (ecclElasticRecover, ecclEplbRecover).
ecclRecoveryInfo recoveryInfo(const RecoveryResult& r, int oldRank, int rank, int size);
ecclElastic_t newElasticHandle(std::unique_ptr<ElasticGroup> group);
// Frees the borrowed communicator handles of an elastic group whose epoch changed (group.mu held
// or no other thread using the group).
void dropCommHandles(ecclElastic& group);
// Throws Error(kInvalidArgument) when an EPLB updater still runs on it (`what` is refused).
void requireNoEplb(const std::atomic<int>& eplbs, const char* what);
// The registration behind `handle`, checked to belong to `comm`; null for a null handle.
const transport::MemoryRegion* regionOf(ecclComm_t comm, ecclMemHandle_t handle, const std::string& what);

// An out-pointer the caller must pass.
template <class T>
T& out(T* p, const char* name) {
  if (p == nullptr) throw Error(ErrorCode::kInvalidArgument, std::string(name) + " (the output pointer) is null");
  return *p;
}

// A string argument that must not be null.
std::string text(const char* s, const char* name);

// A buffer that must exist when it holds elements.
void need(const void* buf, uint64_t count, const char* name);

// C callers may pass any integer as an enum; reading it as the C++ enum type would be undefined
// behaviour when it is out of range, so look at its bytes.
template <class E>
int raw(const E& e) {
  static_assert(sizeof(E) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

DataType typeOf(const ecclDataType_t& t);
ReduceOp opOf(const ecclRedOp_t& op);
// count elements of t in bytes; refuses a count whose byte size exceeds PTRDIFF_MAX.
size_t bytesOf(uint64_t count, const ecclDataType_t& t);
// An optional timeout in milliseconds: < 0 = nullopt (the default).
std::optional<std::chrono::milliseconds> timeoutOf(int64_t ms);

// Copies `s` NUL-terminated into buf; when it does not fit throws Error(kInvalidArgument) after
// setting *bytes to the size needed (NUL included).
void copyOut(const std::string& s, char* buf, size_t capacity, size_t* bytes, const char* what);

}  // namespace eccl::capi
