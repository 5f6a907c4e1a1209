/* eccl's C API, in the style of HCCL and NCCL, for C programs and Python ctypes (as
 * vllm-ascend's pyhccl uses HCCL). Every function returns an ecclResult_t; after a failure,
 * ecclGetLastError() describes it (operation, group, ranks, peer address, sizes).
 *
 * Counts are in elements of the given data type. Calls block until the operation is done on this
 * rank (or fails; the default deadline is $ECCL_TIMEOUT seconds, 300 if unset). A communicator
 * may be used from several threads, but collectives must be called in the same order on every
 * rank. Library: libeccl_groups.so (it pulls in libeccl_comm and libeccl_transport).
 *
 * Multi-node: set ECCL_SOCKET_IFNAME to the interface ranks reach each other by (like
 * NCCL_SOCKET_IFNAME); without it, ecclGetRootInfo serves on 127.0.0.1 (one machine). */
#ifndef ECCL_H_
#define ECCL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ecclSuccess = 0,
  ecclInvalidArgument = 1,
  ecclTimeout = 2,
  ecclConnectionClosed = 3, /* a peer died or went away */
  ecclRemoteError = 4,
  ecclSystemError = 5,
  ecclAborted = 6,
  ecclInternalError = 7,
} ecclResult_t;

typedef enum {
  ecclInt8 = 0,
  ecclInt32 = 1,
  ecclInt64 = 2,
  ecclFloat16 = 3,
  ecclBfloat16 = 4,
  ecclFloat32 = 5,
  ecclFloat64 = 6,
} ecclDataType_t;

typedef enum { ecclSum = 0, ecclProd = 1, ecclMin = 2, ecclMax = 3 } ecclRedOp_t;

typedef enum { ecclSendOp = 0, ecclRecvOp = 1 } ecclSendRecvType_t;

/* A registration of memory with a communicator (ecclCommRegister). */
typedef struct ecclMemHandle* ecclMemHandle_t;

/* One operation of ecclBatchSendRecv (HCCL's HcclSendRecvItem, plus an optional registration). */
typedef struct {
  ecclSendRecvType_t type;
  void* buf;
  uint64_t count;
  ecclDataType_t dataType;
  uint32_t remoteRank;
  ecclMemHandle_t memHandle; /* NULL, or a registration of this communicator holding the buffer */
} ecclSendRecvItem;

#define ECCL_ROOT_INFO_BYTES 256
/* Opaque; created by rank 0 with ecclGetRootInfo and passed to every rank out of band. */
typedef struct {
  char internal[ECCL_ROOT_INFO_BYTES];
} ecclRootInfo;

typedef struct ecclComm* ecclComm_t;

/* Starts a rendezvous store in this process and describes it. Call on one rank (rank 0). */
ecclResult_t ecclGetRootInfo(ecclRootInfo* rootInfo);
/* Every rank: builds the communicator of nRanks ranks described by rootInfo. */
ecclResult_t ecclCommInitRootInfo(uint32_t nRanks, const ecclRootInfo* rootInfo, uint32_t rank, ecclComm_t* comm);
/* Every rank: builds group `groupName` at `epoch` through an existing store ("host:port"). */
ecclResult_t ecclCommInitFromStore(const char* storeAddress, const char* groupName, uint64_t epoch, uint32_t rank,
                                   uint32_t nRanks, ecclComm_t* comm);

ecclResult_t ecclCommRank(ecclComm_t comm, uint32_t* rank);
ecclResult_t ecclCommSize(ecclComm_t comm, uint32_t* size);

/* recvBuf holds nRanks * sendCount elements. */
ecclResult_t ecclAllGather(const void* sendBuf, void* recvBuf, uint64_t sendCount, ecclDataType_t dataType, ecclComm_t comm);
ecclResult_t ecclAllReduce(const void* sendBuf, void* recvBuf, uint64_t count, ecclDataType_t dataType, ecclRedOp_t op,
                           ecclComm_t comm);
ecclResult_t ecclBroadcast(void* buf, uint64_t count, ecclDataType_t dataType, uint32_t root, ecclComm_t comm);
/* sendBuf holds nRanks * recvCount elements. */
ecclResult_t ecclReduceScatter(const void* sendBuf, void* recvBuf, uint64_t recvCount, ecclDataType_t dataType,
                               ecclRedOp_t op, ecclComm_t comm);
/* Per-rank counts and displacements, in elements (HCCL's HcclAlltoAllV). */
ecclResult_t ecclAllToAllV(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls, ecclDataType_t sendType,
                           void* recvBuf, const uint64_t* recvCounts, const uint64_t* rdispls, ecclDataType_t recvType,
                           ecclComm_t comm);
ecclResult_t ecclSend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, ecclComm_t comm);
ecclResult_t ecclRecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, ecclComm_t comm);
/* All items start together and complete in any order; returns when all are done. */
ecclResult_t ecclBatchSendRecv(ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm);
ecclResult_t ecclBarrier(ecclComm_t comm);

/* Registers bytes at buf with the communicator's transport, once, for buffers used again and
 * again (NCCL's ncclCommRegister): RDMA transports pin and map it, sockets only note it. The
 * memory must stay allocated until ecclCommDeregister or ecclCommDestroy (which releases every
 * registration left). A handle is only valid with the communicator that made it. */
ecclResult_t ecclCommRegister(ecclComm_t comm, void* buf, size_t bytes, ecclMemHandle_t* handle);
ecclResult_t ecclCommDeregister(ecclComm_t comm, ecclMemHandle_t handle);

/* Fails every pending operation here and on every other rank. The communicator must still be
 * destroyed. */
ecclResult_t ecclCommAbort(ecclComm_t comm);
/* Frees everything; works when peers are gone. comm is invalid afterwards. */
ecclResult_t ecclCommDestroy(ecclComm_t comm);
/* ecclSuccess while healthy, else why the group broke (see ecclGetLastError). */
ecclResult_t ecclCommGetAsyncError(ecclComm_t comm, ecclResult_t* asyncError);

const char* ecclGetErrorString(ecclResult_t result);
/* The message of the last failure in this thread. */
const char* ecclGetLastError(void);

#ifdef __cplusplus
}
#endif

#endif /* ECCL_H_ */
