// The C API over StatelessGroup and Communicator. No exception crosses it.
#include "groups/capi/eccl.h"

#include <openssl/rand.h>

#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>

#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"

struct ecclMemHandle {
  eccl::RegisteredMemory memory;
};

struct ecclComm {
  std::unique_ptr<eccl::StatelessGroup> group;
  std::shared_ptr<eccl::TcpStoreServer> server;  // rank 0's store, when made by ecclGetRootInfo
  // Registrations, so a handle is checked before use and none outlives the communicator.
  std::mutex handlesMu;
  std::map<ecclMemHandle*, std::unique_ptr<ecclMemHandle>> handles;
};

namespace {

thread_local std::string lastError;

// The stores ecclGetRootInfo started, until this process's ecclCommInitRootInfo takes them over.
std::mutex rootMu;
std::map<std::string, std::shared_ptr<eccl::TcpStoreServer>>& rootStores() {
  static std::map<std::string, std::shared_ptr<eccl::TcpStoreServer>> m;
  return m;
}

ecclResult_t toResult(eccl::ErrorCode c) {
  switch (c) {
    case eccl::ErrorCode::kInvalidArgument: return ecclInvalidArgument;
    case eccl::ErrorCode::kTimeout: return ecclTimeout;
    case eccl::ErrorCode::kConnectionClosed:
    case eccl::ErrorCode::kConnectFailed: return ecclConnectionClosed;
    case eccl::ErrorCode::kRemote:
    case eccl::ErrorCode::kProtocol:
    case eccl::ErrorCode::kAuth: return ecclRemoteError;
    case eccl::ErrorCode::kSystem: return ecclSystemError;
    case eccl::ErrorCode::kAborted: return ecclAborted;
  }
  return ecclInternalError;
}

template <class F>
ecclResult_t guarded(F&& f) {
  try {
    f();
    return ecclSuccess;
  } catch (const eccl::Error& e) {
    lastError = e.what();
    return toResult(e.code());
  } catch (const std::exception& e) {
    lastError = e.what();
    return ecclInternalError;
  }
}

// The communicators made and not yet destroyed, so a stale or made-up handle is an error, not
// a crash (a handle whose memory a new communicator reuses cannot be told apart).
std::mutex liveMu;
std::set<const ecclComm*>& liveComms() {
  static std::set<const ecclComm*> s;
  return s;
}

eccl::Communicator& commOf(ecclComm_t comm) {
  if (comm == nullptr) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "null communicator");
  {
    std::lock_guard lock(liveMu);
    if (!liveComms().count(comm))
      throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "not a live communicator (destroyed, or never made by ecclCommInit*)");
  }
  return comm->group->comm();
}

// An out-pointer the caller must pass.
template <class T>
T& out(T* p, const char* name) {
  if (p == nullptr) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, std::string(name) + " (the output pointer) is null");
  return *p;
}

// A buffer that must exist when it holds elements.
void need(const void* buf, uint64_t count, const char* name) {
  if (buf == nullptr && count > 0)
    throw eccl::Error(eccl::ErrorCode::kInvalidArgument, std::string(name) + " is null but holds " + std::to_string(count) + " elements");
}

// C callers may pass any integer as an enum; reading it as the C++ enum type would be undefined
// behaviour when it is out of range, so look at its bytes.
template <class E>
int raw(const E& e) {
  static_assert(sizeof(E) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

eccl::DataType typeOf(const ecclDataType_t& t) {
  int v = raw(t);
  if (v < ecclInt8 || v > ecclFloat64) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "unknown data type " + std::to_string(v));
  return static_cast<eccl::DataType>(v);
}

eccl::ReduceOp opOf(const ecclRedOp_t& op) {
  int v = raw(op);
  if (v < ecclSum || v > ecclMax) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "unknown reduce op " + std::to_string(v));
  return static_cast<eccl::ReduceOp>(v);
}

size_t bytesOf(uint64_t count, const ecclDataType_t& t) {
  const size_t elem = eccl::dataTypeSize(typeOf(t));
  // No object is larger than PTRDIFF_MAX bytes: a count beyond it is an error, not a copy that
  // runs off the end of the address space.
  constexpr size_t kLargest = static_cast<size_t>(std::numeric_limits<ptrdiff_t>::max());
  if (count > kLargest / elem)
    throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "count " + std::to_string(count) + " of " + std::to_string(elem) +
                                                             "-byte elements overflows a size in bytes");
  return count * elem;
}

ecclResult_t initComm(const std::string& storeAddress, const std::string& name, uint64_t epoch, uint32_t rank,
                      uint32_t nRanks, std::shared_ptr<eccl::TcpStoreServer> server, ecclComm_t* comm) {
  return guarded([&] {
    if (comm == nullptr) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "comm output pointer is null");
    auto c = std::make_unique<ecclComm>();
    c->server = std::move(server);
    c->group = eccl::StatelessGroup::create(storeAddress, name, static_cast<int>(rank), static_cast<int>(nRanks), {.epoch = epoch});
    std::lock_guard lock(liveMu);
    liveComms().insert(c.get());
    *comm = c.release();
  });
}

}  // namespace

extern "C" {

ecclResult_t ecclGetRootInfo(ecclRootInfo* rootInfo) {
  return guarded([&] {
    if (rootInfo == nullptr) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "rootInfo is null");
    std::string host = eccl::configuredInterfaceAddress().value_or("127.0.0.1");
    auto server = std::make_shared<eccl::TcpStoreServer>(eccl::TcpStoreServerOptions{.host = host});
    unsigned char id[8];
    RAND_bytes(id, sizeof(id));
    char hex[17];
    for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", id[i]);
    std::string text = "eccl1 " + server->address().str() + " root" + hex;
    {
      std::lock_guard lock(rootMu);
      rootStores()[text] = server;
    }
    std::memset(rootInfo->internal, 0, ECCL_ROOT_INFO_BYTES);
    std::memcpy(rootInfo->internal, text.data(), std::min<size_t>(text.size(), ECCL_ROOT_INFO_BYTES - 1));
  });
}

ecclResult_t ecclCommInitRootInfo(uint32_t nRanks, const ecclRootInfo* rootInfo, uint32_t rank, ecclComm_t* comm) {
  if (rootInfo == nullptr) {
    lastError = "rootInfo is null";
    return ecclInvalidArgument;
  }
  std::string text(rootInfo->internal, strnlen(rootInfo->internal, ECCL_ROOT_INFO_BYTES));
  char addr[200] = {0}, name[64] = {0};
  if (std::sscanf(text.c_str(), "eccl1 %199s %63s", addr, name) != 2) {
    lastError = "rootInfo was not made by ecclGetRootInfo: '" + text + "'";
    return ecclInvalidArgument;
  }
  std::shared_ptr<eccl::TcpStoreServer> server;
  {
    std::lock_guard lock(rootMu);
    auto it = rootStores().find(text);
    if (it != rootStores().end()) {
      server = it->second;
      rootStores().erase(it);
    }
  }
  return initComm(addr, name, 0, rank, nRanks, std::move(server), comm);
}

ecclResult_t ecclCommInitFromStore(const char* storeAddress, const char* groupName, uint64_t epoch, uint32_t rank,
                                   uint32_t nRanks, ecclComm_t* comm) {
  if (storeAddress == nullptr || groupName == nullptr) {
    lastError = "storeAddress and groupName must not be null";
    return ecclInvalidArgument;
  }
  return initComm(storeAddress, groupName, epoch, rank, nRanks, nullptr, comm);
}

ecclResult_t ecclCommRank(ecclComm_t comm, uint32_t* rank) {
  return guarded([&] { out(rank, "rank") = static_cast<uint32_t>(commOf(comm).rank()); });
}

ecclResult_t ecclCommSize(ecclComm_t comm, uint32_t* size) {
  return guarded([&] { out(size, "size") = static_cast<uint32_t>(commOf(comm).size()); });
}

ecclResult_t ecclAllGather(const void* sendBuf, void* recvBuf, uint64_t sendCount, ecclDataType_t dataType, ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    const size_t bytes = bytesOf(sendCount, dataType);
    need(sendBuf, sendCount, "sendBuf");
    need(recvBuf, sendCount, "recvBuf");
    c.allGather(sendBuf, recvBuf, bytes);
  });
}

ecclResult_t ecclAllReduce(const void* sendBuf, void* recvBuf, uint64_t count, ecclDataType_t dataType, ecclRedOp_t op,
                           ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    bytesOf(count, dataType);  // checks the size
    need(sendBuf, count, "sendBuf");
    need(recvBuf, count, "recvBuf");
    c.allReduce(sendBuf, recvBuf, count, typeOf(dataType), opOf(op));
  });
}

ecclResult_t ecclBroadcast(void* buf, uint64_t count, ecclDataType_t dataType, uint32_t root, ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    const size_t bytes = bytesOf(count, dataType);
    need(buf, count, "buf");
    c.broadcast(buf, bytes, static_cast<int>(root));
  });
}

ecclResult_t ecclReduceScatter(const void* sendBuf, void* recvBuf, uint64_t recvCount, ecclDataType_t dataType,
                               ecclRedOp_t op, ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    bytesOf(recvCount, dataType);  // checks the size
    need(sendBuf, recvCount, "sendBuf");
    need(recvBuf, recvCount, "recvBuf");
    c.reduceScatter(sendBuf, recvBuf, recvCount, typeOf(dataType), opOf(op));
  });
}

ecclResult_t ecclAllToAllV(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls, ecclDataType_t sendType,
                           void* recvBuf, const uint64_t* recvCounts, const uint64_t* rdispls, ecclDataType_t recvType,
                           ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    const size_t n = static_cast<size_t>(c.size());
    if (!sendCounts || !sdispls || !recvCounts || !rdispls)
      throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "all_to_all_v: count and displacement arrays must not be null");
    std::vector<size_t> sb(n), so(n), rb(n), ro(n);
    uint64_t sendTotal = 0, recvTotal = 0;
    for (size_t i = 0; i < n; ++i) {
      sb[i] = bytesOf(sendCounts[i], sendType);
      so[i] = bytesOf(sdispls[i], sendType);
      rb[i] = bytesOf(recvCounts[i], recvType);
      ro[i] = bytesOf(rdispls[i], recvType);
      sendTotal += sendCounts[i];
      recvTotal += recvCounts[i];
    }
    need(sendBuf, sendTotal, "sendBuf");
    need(recvBuf, recvTotal, "recvBuf");
    c.allToAllV(sendBuf, sb, so, recvBuf, rb, ro);
  });
}

ecclResult_t ecclSend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    const size_t bytes = bytesOf(count, dataType);
    need(sendBuf, count, "sendBuf");
    c.send(sendBuf, bytes, static_cast<int>(destRank));
  });
}

ecclResult_t ecclRecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, ecclComm_t comm) {
  return guarded([&] {
    auto& c = commOf(comm);
    const size_t bytes = bytesOf(count, dataType);
    need(recvBuf, count, "recvBuf");
    c.recv(recvBuf, bytes, static_cast<int>(srcRank));
  });
}

ecclResult_t ecclBatchSendRecv(ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm) {
  return guarded([&] {
    if (items == nullptr && itemNum > 0) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "items is null");
    std::vector<eccl::P2POp> ops;
    for (uint32_t i = 0; i < itemNum; ++i) {
      const int kind = raw(items[i].type);
      if (kind != ecclSendOp && kind != ecclRecvOp)
        throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "item " + std::to_string(i) + " is neither a send nor a receive");
      const eccl::transport::MemoryRegion* region = nullptr;
      if (items[i].memHandle != nullptr) {
        std::lock_guard lock(comm->handlesMu);
        auto it = comm->handles.find(items[i].memHandle);
        if (it == comm->handles.end())
          throw eccl::Error(eccl::ErrorCode::kInvalidArgument,
                            "item " + std::to_string(i) + ": memHandle is not a live registration of this communicator");
        region = &it->second->memory.region();  // stays valid: deregistering during the call is a caller error
      }
      ops.push_back({kind == ecclSendOp ? eccl::P2POp::kSend : eccl::P2POp::kRecv, items[i].buf,
                     bytesOf(items[i].count, items[i].dataType), static_cast<int>(items[i].remoteRank), 0, region});
    }
    commOf(comm).batchIsendIrecv(ops).wait();
  });
}

ecclResult_t ecclBarrier(ecclComm_t comm) {
  return guarded([&] { commOf(comm).barrier(); });
}

ecclResult_t ecclCommRegister(ecclComm_t comm, void* buf, size_t bytes, ecclMemHandle_t* handle) {
  return guarded([&] {
    if (handle == nullptr) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "handle (the out-pointer) is null");
    *handle = nullptr;
    auto h = std::make_unique<ecclMemHandle>();
    h->memory = commOf(comm).registerMemory(buf, bytes);
    std::lock_guard lock(comm->handlesMu);
    *handle = h.get();
    comm->handles.emplace(h.get(), std::move(h));
  });
}

ecclResult_t ecclCommDeregister(ecclComm_t comm, ecclMemHandle_t handle) {
  return guarded([&] {
    commOf(comm);  // checks comm
    std::unique_ptr<ecclMemHandle> h;
    {
      std::lock_guard lock(comm->handlesMu);
      auto it = comm->handles.find(handle);
      if (it == comm->handles.end())
        throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "handle is not a live registration of this communicator");
      h = std::move(it->second);
      comm->handles.erase(it);
    }
  });
}

ecclResult_t ecclCommAbort(ecclComm_t comm) {
  return guarded([&] { commOf(comm).abort("ecclCommAbort called"); });
}

ecclResult_t ecclCommDestroy(ecclComm_t comm) {
  return guarded([&] {
    commOf(comm);  // a live one
    {
      std::lock_guard lock(liveMu);
      liveComms().erase(comm);
    }
    delete comm;
  });
}

ecclResult_t ecclCommGetAsyncError(ecclComm_t comm, ecclResult_t* asyncError) {
  return guarded([&] {
    auto& result = out(asyncError, "asyncError");
    auto err = commOf(comm).asyncError();
    result = err ? ecclAborted : ecclSuccess;
    if (err) lastError = *err;
  });
}

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

const char* ecclGetLastError(void) { return lastError.c_str(); }

}  // extern "C"
