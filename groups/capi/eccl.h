/* eccl's C API, in the style of HCCL and NCCL, for C programs and Python ctypes (as
 * vllm-ascend's pyhccl uses HCCL; eccl's own Python package is built on it). Every function
 * returns an ecclResult_t; after a failure, ecclGetLastError() describes it (operation, group,
 * ranks, peer address, sizes, the argument that was wrong).
 *
 * Counts are in elements of the given data type. The plain calls block until the operation is
 * done on this rank (or fails; the default deadline is $ECCL_TIMEOUT seconds, 300 if unset); the
 * ...Async calls and ecclIsend/ecclIrecv return an ecclWork_t at once (see "Async work"). A
 * communicator may be used from several threads, but collectives must be called in the same
 * order on every rank. Library: libeccl_groups.so (it pulls in libeccl_comm and
 * libeccl_transport); the EPLB calls are in eccl_eplb.h / libeccl_eplb.so.
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
  ecclUint8 = 7,
  ecclInt16 = 8,
  ecclBool = 9,        /* one byte, 0 or 1; sum/max reduce as "or", prod/min as "and" */
  ecclFloat8E4M3 = 10, /* OCP fp8 (torch.float8_e4m3fn): moves and gathers only, no reductions */
  ecclFloat8E5M2 = 11, /* OCP fp8 (torch.float8_e5m2): moves and gathers only */
} ecclDataType_t;

typedef enum { ecclSum = 0, ecclProd = 1, ecclMin = 2, ecclMax = 3 } ecclRedOp_t;

typedef enum { ecclSendOp = 0, ecclRecvOp = 1 } ecclSendRecvType_t;

/* A registration of memory with a communicator (ecclCommRegister). */
typedef struct ecclMemHandle* ecclMemHandle_t;

/* One operation of ecclBatchSendRecv (HCCL's HcclSendRecvItem, plus an optional registration
 * and a tag). Messages between the same pair match by tag, in posting order within a tag: two
 * threads moving data between the same ranks use different tags. */
typedef struct {
  ecclSendRecvType_t type;
  void* buf;
  uint64_t count;
  ecclDataType_t dataType;
  uint32_t remoteRank;
  ecclMemHandle_t memHandle; /* NULL, or a registration of this communicator holding the buffer */
  uint64_t tag;              /* 0 .. ECCL_MAX_TAG */
} ecclSendRecvItem;

#define ECCL_MAX_TAG ((UINT64_C(1) << 62) - 1)

/* The handle of an operation in flight (like torch's Work). Free it with ecclWorkFree, done or
 * not; buffers must stay valid until the operation has finished (ecclWorkWait returned, or
 * ecclWorkTest said done), even if the handle is freed earlier. Handles stay valid after their
 * communicator is destroyed (the operation has then failed). Test, wait and cancel may be called
 * from several threads at once; ecclWorkFree must not race another call on the same handle. */
typedef struct ecclWork* ecclWork_t;

#define ECCL_ROOT_INFO_BYTES 256
/* Opaque; created by rank 0 with ecclGetRootInfo and passed to every rank out of band. */
typedef struct {
  char internal[ECCL_ROOT_INFO_BYTES];
} ecclRootInfo;

typedef struct ecclComm* ecclComm_t;
/* A connection to a rendezvous store (eccl-store, ecclStoreServerStart, or the one
 * ecclBootstrapFromEnv starts on rank 0). Thread-safe; keys and values are bytes. */
typedef struct ecclStore* ecclStore_t;
/* A rendezvous store served by this process, on its own thread, until ecclStoreServerStop. */
typedef struct ecclStoreServer* ecclStoreServer_t;
/* A group that changes membership by epochs (see "Elastic groups"). */
typedef struct ecclElastic* ecclElastic_t;

/* Starts a rendezvous store in this process and describes it. Call on one rank (rank 0). */
ecclResult_t ecclGetRootInfo(ecclRootInfo* rootInfo);
/* Every rank: builds the communicator of nRanks ranks described by rootInfo. */
ecclResult_t ecclCommInitRootInfo(uint32_t nRanks, const ecclRootInfo* rootInfo, uint32_t rank, ecclComm_t* comm);
/* Every rank: builds group `groupName` at `epoch` through an existing store ("host:port"). */
ecclResult_t ecclCommInitFromStore(const char* storeAddress, const char* groupName, uint64_t epoch, uint32_t rank,
                                   uint32_t nRanks, ecclComm_t* comm);

/* Every rank: builds group `groupName` at `epoch` over a store connection this process holds. */
ecclResult_t ecclCommInitWithStore(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t rank, uint32_t nRanks,
                                   ecclComm_t* comm);
/* A rank whose nRanks differs from the first arrival's fails at once, saying so, and so do the
 * ranks still waiting for the group (within about two seconds). After a failed build, build at a
 * new epoch or under a new name. */

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
/* Tag 0. */
ecclResult_t ecclSend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, ecclComm_t comm);
ecclResult_t ecclRecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, ecclComm_t comm);
ecclResult_t ecclSendTagged(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, uint64_t tag,
                            ecclComm_t comm);
ecclResult_t ecclRecvTagged(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, uint64_t tag,
                            ecclComm_t comm);
/* All items start together and complete in any order; returns when all are done. */
ecclResult_t ecclBatchSendRecv(ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm);
ecclResult_t ecclBarrier(ecclComm_t comm);

/* --- Async work: the same operations, returning at once with *work set (NULL on failure). */
ecclResult_t ecclIsend(const void* sendBuf, uint64_t count, ecclDataType_t dataType, uint32_t destRank, uint64_t tag,
                       ecclComm_t comm, ecclWork_t* work);
ecclResult_t ecclIrecv(void* recvBuf, uint64_t count, ecclDataType_t dataType, uint32_t srcRank, uint64_t tag,
                       ecclComm_t comm, ecclWork_t* work);
/* The items array may be freed once this returns; the buffers may not. */
ecclResult_t ecclBatchSendRecvAsync(const ecclSendRecvItem* items, uint32_t itemNum, ecclComm_t comm, ecclWork_t* work);
ecclResult_t ecclAllGatherAsync(const void* sendBuf, void* recvBuf, uint64_t sendCount, ecclDataType_t dataType,
                                ecclComm_t comm, ecclWork_t* work);
ecclResult_t ecclAllReduceAsync(const void* sendBuf, void* recvBuf, uint64_t count, ecclDataType_t dataType, ecclRedOp_t op,
                                ecclComm_t comm, ecclWork_t* work);
ecclResult_t ecclBroadcastAsync(void* buf, uint64_t count, ecclDataType_t dataType, uint32_t root, ecclComm_t comm,
                                ecclWork_t* work);
ecclResult_t ecclReduceScatterAsync(const void* sendBuf, void* recvBuf, uint64_t recvCount, ecclDataType_t dataType,
                                    ecclRedOp_t op, ecclComm_t comm, ecclWork_t* work);
/* The count and displacement arrays are copied; they may be freed once this returns. */
ecclResult_t ecclAllToAllVAsync(const void* sendBuf, const uint64_t* sendCounts, const uint64_t* sdispls,
                                ecclDataType_t sendType, void* recvBuf, const uint64_t* recvCounts, const uint64_t* rdispls,
                                ecclDataType_t recvType, ecclComm_t comm, ecclWork_t* work);
ecclResult_t ecclBarrierAsync(ecclComm_t comm, ecclWork_t* work);
/* *done = 1 once the operation finished; then returns its result (ecclSuccess or its error). */
ecclResult_t ecclWorkTest(ecclWork_t work, int* done);
/* Waits until it finishes, returning its result; timeoutMs < 0 = the communicator's timeout.
 * At the deadline returns ecclTimeout: a collective keeps running (wait again, or abort the
 * communicator), while P2P work is withdrawn — its buffers are free once this returns, and
 * ecclWorkTest then reports it done with ecclTimeout; a message that would have matched a
 * withdrawn receive is not delivered to a later one (use a fresh tag). An operation that itself failed on a
 * timeout also returns ecclTimeout; ecclWorkTest tells the two apart for a collective (done or
 * not). Waiting holds no lock: other threads may use the communicator meanwhile. */
ecclResult_t ecclWorkWait(ecclWork_t work, int64_t timeoutMs);
/* P2P work only: once it returns, no buffer of the operation is touched any more. */
ecclResult_t ecclWorkCancel(ecclWork_t work);
ecclResult_t ecclWorkFree(ecclWork_t work);

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
/* *asyncError = ecclSuccess while healthy, else how the group broke: ecclConnectionClosed when a
 * peer died or hung up (or the heartbeat declared it failed), ecclAborted after an abort (here or relayed from a peer; a collective
 * that timed out aborts the group too), ecclRemoteError for a protocol error. ecclGetLastError()
 * then names the rank and the reason. */
ecclResult_t ecclCommGetAsyncError(ecclComm_t comm, ecclResult_t* asyncError);
/* Revokes the communicator (a rank failed; ULFM's MPI_Comm_revoke): every pending and later
 * operation fails here and on every other rank with an error naming the failed ranks known here;
 * the communicator stays queryable and must still be destroyed. `failedRanks` (may be NULL when
 * nFailed is 0) are recorded as failed; `reason` may be NULL. Idempotent. */
ecclResult_t ecclCommRevoke(ecclComm_t comm, const char* reason, const int* failedRanks, uint32_t nFailed);
/* The ranks known to have failed, ascending: from the heartbeat monitor ($ECCL_HEARTBEAT_TIMEOUT)
 * or revoke. Writes up to `capacity` of them to `ranks` and their number to *count (so a call
 * with capacity 0 asks for the count). */
ecclResult_t ecclCommGetFailedRanks(ecclComm_t comm, int* ranks, uint32_t capacity, uint32_t* count);

/* --- Rendezvous store */
/* Serves a store on host:port (port 0 = any free port; host NULL = "127.0.0.1"). */
ecclResult_t ecclStoreServerStart(const char* host, uint16_t port, ecclStoreServer_t* server);
/* "host:port", NUL-terminated, into buf of `capacity` bytes. */
ecclResult_t ecclStoreServerAddress(ecclStoreServer_t server, char* buf, size_t capacity);
ecclResult_t ecclStoreServerStop(ecclStoreServer_t server);
/* Connects to "host:port" (and makes one round trip, so an unreachable store fails here, naming
 * it); timeoutMs bounds connecting and is the default of every blocking call (< 0 =
 * $ECCL_STORE_TIMEOUT or 300 s). A token in $ECCL_STORE_TOKEN is used if set. A communicator
 * or elastic group built over a store connection shares it: close the store after them. */
ecclResult_t ecclStoreConnect(const char* address, int64_t timeoutMs, ecclStore_t* store);
ecclResult_t ecclStoreSet(ecclStore_t store, const char* key, const void* value, size_t bytes);
/* Waits for `key` (timeoutMs < 0 = the store's default), copies its value into buf. When it does
 * not fit, returns ecclInvalidArgument with *bytes = the value's size (the key is kept: call
 * again with a larger buffer). */
ecclResult_t ecclStoreGet(ecclStore_t store, const char* key, void* buf, size_t capacity, size_t* bytes, int64_t timeoutMs);
/* Adds delta to the decimal counter at key (absent = 0); *value = the result (may be NULL). */
ecclResult_t ecclStoreAdd(ecclStore_t store, const char* key, int64_t delta, int64_t* value);
ecclResult_t ecclStoreWait(ecclStore_t store, const char* const* keys, uint32_t keyCount, int64_t timeoutMs);
/* *existed (may be NULL) = 1 when the key was there. */
ecclResult_t ecclStoreDelete(ecclStore_t store, const char* key, int* existed);
ecclResult_t ecclStoreClose(ecclStore_t store);

/* --- Launchers: rank, size and the store from the environment a launcher set up.
 * torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), Open MPI's
 * mpirun (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE) and Slurm's srun (SLURM_PROCID,
 * SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE and SLURM_NODEID for the local size,
 * SLURM_STEP_NODELIST),
 * checked in that order. The store is at
 * $ECCL_STORE_ADDR ("host:port", an eccl-store the launcher runs; nobody serves it) or else
 * served by rank 0 at $MASTER_ADDR (Slurm: the step's first node; one-node mpirun: 127.0.0.1)
 * on $ECCL_STORE_PORT, or $MASTER_PORT + 1 (torch.distributed's own store holds MASTER_PORT), or
 * 29501. */
typedef struct {
  char launcher[16]; /* "torchrun", "openmpi" or "slurm" */
  int32_t rank, size, localRank, localSize;
  char storeHost[256];
  uint16_t storePort;
  int32_t servesStore; /* 1: this process (rank 0) serves the store */
} ecclLaunchInfo;
/* Fills info; ecclInvalidArgument naming the variable when none is set or one is malformed. */
ecclResult_t ecclLaunchInfoFromEnv(ecclLaunchInfo* info);
/* ecclLaunchInfoFromEnv, then (rank 0) serves the store and (every rank) connects to it. The
 * store connection owns the served store: close it last on rank 0. */
ecclResult_t ecclBootstrapFromEnv(ecclLaunchInfo* info, ecclStore_t* store);

/* --- Elastic groups: the active epoch serves while the next one is built beside it.
 * ecclElasticJoin at the first epoch (and by processes joining a later one); every current member
 * calls ecclElasticPrepare with the same plan, keeps using ecclElasticComm, then
 * ecclElasticSwitch. oldToNew[r] = rank r's rank in the next epoch, -1 = leaving. The
 * communicator from ecclElasticComm belongs to the elastic group (do not destroy it) and is
 * invalid after ecclElasticSwitch; ask again. */
/* At a later epoch (a process joining), this waits until the members have prepared it. */
ecclResult_t ecclElasticJoin(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t rank, uint32_t nRanks,
                             ecclElastic_t* group);
ecclResult_t ecclElasticComm(ecclElastic_t group, ecclComm_t* comm);
ecclResult_t ecclElasticEpoch(ecclElastic_t group, uint64_t* epoch);
ecclResult_t ecclElasticPrepare(ecclElastic_t group, uint32_t newSize, const int32_t* oldToNew, uint32_t oldSize);
/* This rank's rank in the prepared epoch, -1 when leaving. */
ecclResult_t ecclElasticNextRank(ecclElastic_t group, int32_t* rank);
/* The prepared epoch's communicator (waits for its build), for moving state to joining ranks
 * before the switch; owned by the elastic group. */
ecclResult_t ecclElasticStandbyComm(ecclElastic_t group, ecclComm_t* comm);
/* Drains the old epoch and switches; *member = 0 when this rank left (destroy the group then). */
ecclResult_t ecclElasticSwitch(ecclElastic_t group, int* member);

/* What a recovery did (ecclElasticRecover, ecclEplbRecover). */
typedef struct {
  uint64_t oldEpoch, epoch;     /* the revoked epoch and the one built without the failed ranks */
  int32_t oldRank, rank;        /* this process's rank before and after */
  int32_t oldSize, size;
  int32_t failed;               /* how many ranks failed (oldToNew[r] == -1 for them) */
  int32_t rounds;               /* > 1 when a rank failed during the recovery itself */
  double agreeSeconds, buildSeconds;
} ecclRecoveryInfo;

/* After a rank failure (an operation failed; ecclCommGetFailedRanks names it): every survivor
 * calls this; they agree on the failed set through the store and build the next epoch without it
 * (survivors keep their order). oldToNew (may be NULL) receives each old rank's new rank, -1 for a
 * failed one (capacity >= the old size). Refused while an eplb runs on the group (use
 * ecclEplbRecover). On a rank the others declared failed it returns ecclAborted, and the group is
 * closed (destroy it). Communicators from ecclElasticComm are invalid afterwards; ask again. */
ecclResult_t ecclElasticRecover(ecclElastic_t group, int32_t* oldToNew, uint32_t capacity, ecclRecoveryInfo* info);
ecclResult_t ecclElasticDestroy(ecclElastic_t group);

const char* ecclGetErrorString(ecclResult_t result);
/* The message of the last failure in this thread. */
const char* ecclGetLastError(void);

#ifdef __cplusplus
}
#endif

#endif /* ECCL_H_ */
