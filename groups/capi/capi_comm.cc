// The C API's communicator: building one, the operations (blocking and async), work handles,
// registrations, abort and destroy.
#include <openssl/rand.h>

#include "groups/capi/capi_internal.h"
#include "groups/store/tcp_store_client.h"

using namespace eccl;
using namespace eccl::capi;

namespace {

// The stores ecclGetRootInfo started, until this process's ecclCommInitRootInfo takes them over.
std::mutex rootMu;
std::map<std::string, std::shared_ptr<TcpStoreServer>>& rootStores() {
  static std::map<std::string, std::shared_ptr<TcpStoreServer>> m;
  return m;
}

ecclResult_t initComm(const std::function<std::unique_ptr<StatelessGroup>()>& build, std::shared_ptr<TcpStoreServer> server,
                      ecclComm_t* comm) {
  return guarded([&] {
    out(comm, "comm") = nullptr;
    *comm = newCommHandle(build(), nullptr, std::move(server));
  });
}

// The async form hands the Work out; the blocking form waits for it.
template <class F>
ecclResult_t startWork(ecclWork_t* work, F&& start) {
  return guarded([&] {
    out(work, "work") = nullptr;
    auto w = std::make_unique<ecclWork>();
    w->work = start();
    track(w.get(), "work");
    *work = w.release();
  });
}

template <class F>
ecclResult_t runWork(F&& start) {
  return guarded([&] {
    Communicator::BlockingCall blocking;  // a collective may run on this thread (no hand-off)
    start().wait();
  });
}

Work allGather(const void* sendBuf, void* recvBuf, uint64_t sendCount, const ecclDataType_t& dataType, ecclComm_t comm) {
  auto& c = commOf(comm);
  const size_t bytes = bytesOf(sendCount, dataType);
  need(sendBuf, sendCount, "sendBuf");
  need(recvBuf, sendCount, "recvBuf");
  return c.allGatherAsync(sendBuf, recvBuf, bytes);
}

Work allReduce(const void* sendBuf, void* recvBuf, uint64_t count, const ecclDataType_t& dataType, const ecclRedOp_t& op, ecclComm_t comm) {
  auto& c = commOf(comm);
  bytesOf(count, dataType);  // checks the size
  need(sendBuf, count, "sendBuf");
  need(recvBuf, count, "recvBuf");
  return c.allReduceAsync(sendBuf, recvBuf, count, typeOf(dataType), opOf(op));
}

Work broadcast(void* buf, uint64_t count, const ecclDataType_t& dataType, uint32_t root, ecclComm_t comm) {
  auto& c = commOf(comm);
  const size_t bytes = bytesOf(count, dataType);
  need(buf, count, "buf");
  return c.broadcastAsync(buf, bytes, static_cast<int>(root));
}

Work reduceScatter(const void* sendBuf, void* recvBuf, uint64_t recvCount, const ecclDataType_t& dataType, const ecclRedOp_t& op,
                   ecclComm_t comm) {
  auto& c = commOf(comm);
  bytesOf(recvCount, dataType);  // checks the size
  need(sendBuf, recvCount, "sendBuf");
  need(recvBuf, recvCount, "recvBuf");
  return c.reduceScatterAsync(sendBuf, recvBuf, recvCount, typeOf(dataType), opOf(op));
}

Work allToAllV(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls, const ecclDataType_t& sendType, void* recvBuf,
               const uint64_t* recvCounts, const uint64_t* rdispls, const ecclDataType_t& recvType, ecclComm_t comm) {
  auto& c = commOf(comm);
  const size_t n = static_cast<size_t>(c.size());
  if (!sendCounts || !sdispls || !recvCounts || !rdispls)
    throw Error(ErrorCode::kInvalidArgument, "all_to_all_v: count and displacement arrays must not be null");
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
  return c.allToAllVAsync(sendBuf, sb, so, recvBuf, rb, ro);
}

P2PTag tagOf(uint64_t tag, const std::string& what) {
  if (tag > kMaxP2PTag)
    throw Error(ErrorCode::kInvalidArgument, what + ": tag " + std::to_string(tag) + " is above ECCL_MAX_TAG (2^62 - 1)");
  return tag;
}

Work isend(const void* buf, uint64_t count, const ecclDataType_t& dataType, uint32_t dest, uint64_t tag, ecclComm_t comm) {
  auto& c = commOf(comm);
  const size_t bytes = bytesOf(count, dataType);
  need(buf, count, "sendBuf");
  return c.isend(buf, bytes, static_cast<int>(dest), tagOf(tag, "send"));
}

Work irecv(void* buf, uint64_t count, const ecclDataType_t& dataType, uint32_t src, uint64_t tag, ecclComm_t comm) {
  auto& c = commOf(comm);
  const size_t bytes = bytesOf(count, dataType);
  need(buf, count, "recvBuf");
  return c.irecv(buf, bytes, static_cast<int>(src), tagOf(tag, "recv"));
}

Work batch(const ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm) {
  auto& c = commOf(comm);
  if (items == nullptr && itemNum > 0) throw Error(ErrorCode::kInvalidArgument, "items is null");
  std::vector<P2POp> ops;
  ops.reserve(itemNum);
  for (uint32_t i = 0; i < itemNum; ++i) {
    const std::string what = "item " + std::to_string(i);
    const int kind = raw(items[i].type);
    if (kind != ecclSendOp && kind != ecclRecvOp) throw Error(ErrorCode::kInvalidArgument, what + " is neither a send nor a receive");
    need(items[i].buf, items[i].count, (what + " buf").c_str());
    ops.push_back({kind == ecclSendOp ? P2POp::kSend : P2POp::kRecv, items[i].buf, bytesOf(items[i].count, items[i].dataType),
                   static_cast<int>(items[i].remoteRank), tagOf(items[i].tag, what), regionOf(comm, items[i].memHandle, what)});
  }
  return c.batchIsendIrecv(ops);
}

ecclWork& workOf(ecclWork_t work) {
  requireLive(work, "work");
  return *work;
}

}  // namespace

extern "C" {

ecclResult_t ecclGetRootInfo(ecclRootInfo* rootInfo) {
  return guarded([&] {
    if (rootInfo == nullptr) throw Error(ErrorCode::kInvalidArgument, "rootInfo is null");
    std::string host = configuredInterfaceAddress().value_or("127.0.0.1");
    auto server = std::make_shared<TcpStoreServer>(TcpStoreServerOptions{.host = host});
    unsigned char id[8];
    RAND_bytes(id, sizeof(id));
    char hex[17];
    for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", id[i]);
    std::string info = "eccl1 " + server->address().str() + " root" + hex;
    {
      std::lock_guard lock(rootMu);
      rootStores()[info] = server;
    }
    std::memset(rootInfo->internal, 0, ECCL_ROOT_INFO_BYTES);
    std::memcpy(rootInfo->internal, info.data(), std::min<size_t>(info.size(), ECCL_ROOT_INFO_BYTES - 1));
  });
}

ecclResult_t ecclCommInitRootInfo(uint32_t nRanks, const ecclRootInfo* rootInfo, uint32_t rank, ecclComm_t* comm) {
  if (rootInfo == nullptr) {
    setLastError("rootInfo is null");
    return ecclInvalidArgument;
  }
  std::string info(rootInfo->internal, strnlen(rootInfo->internal, ECCL_ROOT_INFO_BYTES));
  char addr[200] = {0}, name[64] = {0};
  if (std::sscanf(info.c_str(), "eccl1 %199s %63s", addr, name) != 2) {
    setLastError("rootInfo was not made by ecclGetRootInfo: '" + info + "'");
    return ecclInvalidArgument;
  }
  std::shared_ptr<TcpStoreServer> server;
  {
    std::lock_guard lock(rootMu);
    auto it = rootStores().find(info);
    if (it != rootStores().end()) {
      server = it->second;
      rootStores().erase(it);
    }
  }
  return initComm([&] { return StatelessGroup::create(std::string(addr), name, int(rank), int(nRanks)); }, std::move(server),
                  comm);
}

ecclResult_t ecclCommInitFromStore(const char* storeAddress, const char* groupName, uint64_t epoch, uint32_t rank,
                                   uint32_t nRanks, ecclComm_t* comm) {
  return initComm(
      [&] {
        return StatelessGroup::create(text(storeAddress, "storeAddress"), text(groupName, "groupName"), int(rank), int(nRanks),
                                      {.epoch = epoch});
      },
      nullptr, comm);
}

ecclResult_t ecclCommInitWithStore(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t rank, uint32_t nRanks,
                                   ecclComm_t* comm) {
  return initComm(
      [&] {
        storeOf(store);
        return StatelessGroup::create(store->store, text(groupName, "groupName"), int(rank), int(nRanks), {.epoch = epoch});
      },
      nullptr, comm);
}

ecclResult_t ecclCommRank(ecclComm_t comm, uint32_t* rank) {
  return guarded([&] { out(rank, "rank") = static_cast<uint32_t>(commOf(comm).rank()); });
}

ecclResult_t ecclCommSize(ecclComm_t comm, uint32_t* size) {
  return guarded([&] { out(size, "size") = static_cast<uint32_t>(commOf(comm).size()); });
}

ecclResult_t ecclAllGather(const void* sendBuf, void* recvBuf, uint64_t sendCount, ecclDataType_t dataType, ecclComm_t comm) {
  return runWork([&] { return allGather(sendBuf, recvBuf, sendCount, dataType, comm); });
}
ecclResult_t ecclAllGatherAsync(const void* sendBuf, void* recvBuf, uint64_t sendCount, ecclDataType_t dataType,
                                ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return allGather(sendBuf, recvBuf, sendCount, dataType, comm); });
}

ecclResult_t ecclAllReduce(const void* sendBuf, void* recvBuf, uint64_t count, ecclDataType_t dataType, ecclRedOp_t op,
                           ecclComm_t comm) {
  return runWork([&] { return allReduce(sendBuf, recvBuf, count, dataType, op, comm); });
}
ecclResult_t ecclAllReduceAsync(const void* sendBuf, void* recvBuf, uint64_t count, ecclDataType_t dataType, ecclRedOp_t op,
                                ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return allReduce(sendBuf, recvBuf, count, dataType, op, comm); });
}

ecclResult_t ecclBroadcast(void* buf, uint64_t count, ecclDataType_t dataType, uint32_t root, ecclComm_t comm) {
  return runWork([&] { return broadcast(buf, count, dataType, root, comm); });
}
ecclResult_t ecclBroadcastAsync(void* buf, uint64_t count, ecclDataType_t dataType, uint32_t root, ecclComm_t comm,
                                ecclWork_t* work) {
  return startWork(work, [&] { return broadcast(buf, count, dataType, root, comm); });
}

ecclResult_t ecclReduceScatter(const void* sendBuf, void* recvBuf, uint64_t recvCount, ecclDataType_t dataType,
                               ecclRedOp_t op, ecclComm_t comm) {
  return runWork([&] { return reduceScatter(sendBuf, recvBuf, recvCount, dataType, op, comm); });
}
ecclResult_t ecclReduceScatterAsync(const void* sendBuf, void* recvBuf, uint64_t recvCount, ecclDataType_t dataType,
                                    ecclRedOp_t op, ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return reduceScatter(sendBuf, recvBuf, recvCount, dataType, op, comm); });
}

ecclResult_t ecclAllToAllV(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls, ecclDataType_t sendType,
                           void* recvBuf, const uint64_t* recvCounts, const uint64_t* rdispls, ecclDataType_t recvType,
                           ecclComm_t comm) {
  return runWork(
      [&] { return allToAllV(sendBuf, sendCounts, sdispls, sendType, recvBuf, recvCounts, rdispls, recvType, comm); });
}
ecclResult_t ecclAllToAllVAsync(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls,
                                ecclDataType_t sendType, void* recvBuf, const uint64_t* recvCounts, const uint64_t* rdispls,
                                ecclDataType_t recvType, ecclComm_t comm, ecclWork_t* work) {
  return startWork(
      work, [&] { return allToAllV(sendBuf, sendCounts, sdispls, sendType, recvBuf, recvCounts, rdispls, recvType, comm); });
}

ecclResult_t ecclSend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, ecclComm_t comm) {
  return runWork([&] { return isend(sendBuf, count, dataType, destRank, 0, comm); });
}
ecclResult_t ecclRecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, ecclComm_t comm) {
  return runWork([&] { return irecv(recvBuf, count, dataType, srcRank, 0, comm); });
}
ecclResult_t ecclSendTagged(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, uint64_t tag,
                            ecclComm_t comm) {
  return runWork([&] { return isend(sendBuf, count, dataType, destRank, tag, comm); });
}
ecclResult_t ecclRecvTagged(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, uint64_t tag,
                            ecclComm_t comm) {
  return runWork([&] { return irecv(recvBuf, count, dataType, srcRank, tag, comm); });
}
ecclResult_t ecclIsend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, uint64_t tag,
                       ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return isend(sendBuf, count, dataType, destRank, tag, comm); });
}
ecclResult_t ecclIrecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, uint64_t tag,
                       ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return irecv(recvBuf, count, dataType, srcRank, tag, comm); });
}

ecclResult_t ecclBatchSendRecv(ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm) {
  return runWork([&] { return batch(items, itemNum, comm); });
}
ecclResult_t ecclBatchSendRecvAsync(const ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return batch(items, itemNum, comm); });
}

ecclResult_t ecclBarrier(ecclComm_t comm) {
  return runWork([&] { return commOf(comm).barrierAsync(); });
}
ecclResult_t ecclBarrierAsync(ecclComm_t comm, ecclWork_t* work) {
  return startWork(work, [&] { return commOf(comm).barrierAsync(); });
}

ecclResult_t ecclWorkTest(ecclWork_t work, int* done) {
  return guarded([&] {
    auto& w = workOf(work);
    out(done, "done") = 0;
    if (!w.work.test()) return;
    *done = 1;
    w.work.wait(std::chrono::milliseconds(0));  // finished: throws its error, if any
  });
}

ecclResult_t ecclWorkWait(ecclWork_t work, int64_t timeoutMs) {
  return guarded([&] { workOf(work).work.wait(timeoutOf(timeoutMs)); });
}

ecclResult_t ecclWorkCancel(ecclWork_t work) {
  return guarded([&] { workOf(work).work.cancel(); });
}

ecclResult_t ecclWorkFree(ecclWork_t work) {
  return guarded([&] {
    workOf(work);
    untrack(work);
    delete work;
  });
}

ecclResult_t ecclCommRegister(ecclComm_t comm, void* buf, size_t bytes, ecclMemHandle_t* handle) {
  return guarded([&] {
    out(handle, "handle") = nullptr;
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
    std::lock_guard lock(comm->handlesMu);
    auto it = comm->handles.find(handle);
    if (it == comm->handles.end()) throw Error(ErrorCode::kInvalidArgument, "handle is not a live registration of this communicator");
    h = std::move(it->second);
    comm->handles.erase(it);
  });
}

ecclResult_t ecclCommAbort(ecclComm_t comm) {
  return guarded([&] { commOf(comm).abort("ecclCommAbort called"); });
}

ecclResult_t ecclCommDestroy(ecclComm_t comm) {
  return guarded([&] {
    commOf(comm);  // a live one
    if (!comm->group)
      throw Error(ErrorCode::kInvalidArgument, "this communicator belongs to an elastic group: destroy the group (ecclElasticDestroy)");
    requireNoEplb(comm->eplbs, "ecclCommDestroy");
    freeCommHandle(comm);
  });
}

ecclResult_t ecclCommGetAsyncError(ecclComm_t comm, ecclResult_t* asyncError) {
  return guarded([&] {
    auto& result = out(asyncError, "asyncError");
    auto& c = commOf(comm);
    auto reason = c.asyncError();
    auto code = c.asyncErrorCode();
    result = reason ? toResult(code.value_or(ErrorCode::kAborted)) : ecclSuccess;
    if (reason) setLastError(*reason);
  });
}

ecclResult_t ecclCommRevoke(ecclComm_t comm, const char* reason, const int* failedRanks, uint32_t nFailed) {
  return guarded([&] {
    auto& c = commOf(comm);
    if (nFailed > 0 && !failedRanks) throw Error(ErrorCode::kInvalidArgument, "failedRanks is null but nFailed is " + std::to_string(nFailed));
    std::vector<int> failed(failedRanks, failedRanks + nFailed);
    for (int r : failed)
      if (r < 0 || r >= c.size() || r == c.rank())
        throw Error(ErrorCode::kInvalidArgument, "failedRanks names rank " + std::to_string(r) + ", which is not another rank of " +
                                                     c.identity().describe());
    c.revoke(reason ? reason : "ecclCommRevoke called", failed);
  });
}

ecclResult_t ecclCommGetFailedRanks(ecclComm_t comm, int* ranks, uint32_t capacity, uint32_t* count) {
  return guarded([&] {
    auto& n = out(count, "count");
    if (capacity > 0 && !ranks) throw Error(ErrorCode::kInvalidArgument, "ranks is null but capacity is " + std::to_string(capacity));
    auto failed = commOf(comm).failedRanks();
    for (size_t i = 0; i < failed.size() && i < capacity; ++i) ranks[i] = failed[i];
    n = static_cast<uint32_t>(failed.size());
  });
}

}  // extern "C"
