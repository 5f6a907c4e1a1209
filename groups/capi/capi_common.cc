// The C API's shared machinery: last error, live-handle registry, argument checks.
#include <limits>
#include <unordered_map>

#include "groups/capi/capi_internal.h"

namespace eccl::capi {
namespace {

thread_local std::string lastError;

std::mutex liveMu;
std::unordered_map<const void*, const char*>& live() {
  static std::unordered_map<const void*, const char*> m;
  return m;
}

}  // namespace

void setLastError(std::string message) { lastError = std::move(message); }
const char* lastErrorText() { return lastError.c_str(); }

ecclResult_t toResult(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalidArgument: return ecclInvalidArgument;
    case ErrorCode::kTimeout: return ecclTimeout;
    case ErrorCode::kConnectionClosed:
    case ErrorCode::kConnectFailed: return ecclConnectionClosed;
    case ErrorCode::kRemote:
    case ErrorCode::kProtocol:
    case ErrorCode::kAuth: return ecclRemoteError;
    case ErrorCode::kSystem: return ecclSystemError;
    case ErrorCode::kAborted: return ecclAborted;
  }
  return ecclInternalError;
}

void track(const void* handle, const char* kind) {
  std::lock_guard lock(liveMu);
  live()[handle] = kind;
}

void untrack(const void* handle) {
  std::lock_guard lock(liveMu);
  live().erase(handle);
}

void requireLive(const void* handle, const char* kind) {
  if (handle == nullptr) throw Error(ErrorCode::kInvalidArgument, std::string("null ") + kind);
  std::lock_guard lock(liveMu);
  auto it = live().find(handle);
  if (it == live().end() || std::strcmp(it->second, kind) != 0)
    throw Error(ErrorCode::kInvalidArgument, std::string("not a live ") + kind + " (freed, or never made by eccl)");
}

Communicator& commOf(ecclComm_t comm) {
  requireLive(comm, "communicator");
  return *comm->comm;
}

ecclComm_t newCommHandle(std::unique_ptr<StatelessGroup> group, Communicator* borrowed,
                         std::shared_ptr<TcpStoreServer> server) {
  auto c = std::make_unique<ecclComm>();
  c->comm = group ? &group->comm() : borrowed;
  c->group = std::move(group);
  c->server = std::move(server);
  track(c.get(), "communicator");
  return c.release();
}

void freeCommHandle(ecclComm_t comm) {
  untrack(comm);
  delete comm;
}

Store& storeOf(ecclStore_t store) {
  requireLive(store, "store");
  return *store->store;
}

const transport::MemoryRegion* regionOf(ecclComm_t comm, ecclMemHandle_t handle, const std::string& what) {
  if (handle == nullptr) return nullptr;
  std::lock_guard lock(comm->handlesMu);
  auto it = comm->handles.find(handle);
  if (it == comm->handles.end())
    throw Error(ErrorCode::kInvalidArgument, what + ": memHandle is not a live registration of this communicator");
  return &it->second->memory.region();  // stays valid: deregistering during the call is a caller error
}

std::string text(const char* s, const char* name) {
  if (s == nullptr) throw Error(ErrorCode::kInvalidArgument, std::string(name) + " is null");
  return s;
}

void need(const void* buf, uint64_t count, const char* name) {
  if (buf == nullptr && count > 0)
    throw Error(ErrorCode::kInvalidArgument, std::string(name) + " is null but holds " + std::to_string(count) + " elements");
}

DataType typeOf(const ecclDataType_t& t) {
  int v = raw(t);
  if (v < 0 || v >= kDataTypeCount) throw Error(ErrorCode::kInvalidArgument, "unknown data type " + std::to_string(v));
  return static_cast<DataType>(v);
}

ReduceOp opOf(const ecclRedOp_t& op) {
  int v = raw(op);
  if (v < ecclSum || v > ecclMax) throw Error(ErrorCode::kInvalidArgument, "unknown reduce op " + std::to_string(v));
  return static_cast<ReduceOp>(v);
}

size_t bytesOf(uint64_t count, const ecclDataType_t& t) {
  const size_t elem = dataTypeSize(typeOf(t));
  // No object is larger than PTRDIFF_MAX bytes: a count beyond it is an error, not a copy that
  // runs off the end of the address space.
  constexpr size_t kLargest = static_cast<size_t>(std::numeric_limits<ptrdiff_t>::max());
  if (count > kLargest / elem)
    throw Error(ErrorCode::kInvalidArgument,
                "count " + std::to_string(count) + " of " + std::to_string(elem) + "-byte elements overflows a size in bytes");
  return count * elem;
}

std::optional<std::chrono::milliseconds> timeoutOf(int64_t ms) {
  if (ms < 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

void copyOut(const std::string& s, char* buf, size_t capacity, size_t* bytes, const char* what) {
  const size_t need = s.size() + 1;
  if (bytes) *bytes = need;
  if (buf == nullptr || capacity < need)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " needs " + std::to_string(need) + " bytes, the buffer holds " +
                                                 std::to_string(buf ? capacity : 0));
  std::memcpy(buf, s.c_str(), need);
}

ecclRecoveryInfo recoveryInfo(const RecoveryResult& r, int oldRank, int rank, int size) {
  ecclRecoveryInfo info{};
  info.oldEpoch = r.oldEpoch;
  info.epoch = r.epoch;
  info.oldRank = oldRank;
  info.rank = rank;
  info.oldSize = static_cast<int32_t>(r.oldToNew.size());
  info.size = size;
  info.failed = static_cast<int32_t>(r.failed.size());
  info.rounds = r.rounds;
  info.agreeSeconds = r.agreeSeconds;
  info.buildSeconds = r.buildSeconds;
  return info;
}

}  // namespace eccl::capi

extern "C" {

const char* ecclGetErrorString(ecclResult_t r) {
  switch (r) {
    case ecclSuccess: return "success";
    case ecclInvalidArgument: return "invalid argument";
    case ecclTimeout: return "timeout";
    case ecclConnectionClosed: return "connection closed (a peer died or went away)";
    case ecclRemoteError: return "remote error";
    case ecclSystemError: return "system error";
    case ecclAborted: return "aborted";
    case ecclInternalError: return "internal error";
  }
  return "unknown result";
}

const char* ecclGetLastError(void) { return eccl::capi::lastErrorText(); }

}  // extern "C"
