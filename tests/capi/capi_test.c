/* The C API from plain C: rank 0 creates the root info, the other ranks (forked before it, so
 * no thread is copied) get it through a pipe; then collectives, batched P2P and error handling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "groups/capi/eccl.h"

#define CHECK(call)                                                                           \
  do {                                                                                        \
    ecclResult_t r_ = (call);                                                                 \
    if (r_ != ecclSuccess) {                                                                  \
      fprintf(stderr, "rank %u: %s failed: %s: %s\n", rank, #call, ecclGetErrorString(r_),  \
              ecclGetLastError());                                                            \
      return 1;                                                                               \
    }                                                                                         \
  } while (0)

enum { N = 3 };

static int runRank(uint32_t rank, const ecclRootInfo* root) {
  ecclComm_t comm;
  CHECK(ecclCommInitRootInfo(N, root, rank, &comm));
  uint32_t r = 99, n = 0;
  CHECK(ecclCommRank(comm, &r));
  CHECK(ecclCommSize(comm, &n));
  if (r != rank || n != N) return 2;

  float in[5], out[5];
  for (int i = 0; i < 5; ++i) in[i] = (float)(rank + i);
  CHECK(ecclAllReduce(in, out, 5, ecclFloat32, ecclSum, comm));
  for (int i = 0; i < 5; ++i)
    if (out[i] != (float)(0 + 1 + 2 + 3 * i)) return 3;

  int32_t mine[2] = {(int32_t)rank, (int32_t)rank * 10}, all[2 * N];
  CHECK(ecclAllGather(mine, all, 2, ecclInt32, comm));
  for (int q = 0; q < N; ++q)
    if (all[2 * q] != q || all[2 * q + 1] != q * 10) return 4;

  int64_t b = rank == 1 ? 4242 : 0;
  CHECK(ecclBroadcast(&b, 1, ecclInt64, 1, comm));
  if (b != 4242) return 5;

  int32_t rsIn[N], rsOut;
  for (int q = 0; q < N; ++q) rsIn[q] = q + 1;
  CHECK(ecclReduceScatter(rsIn, &rsOut, 1, ecclInt32, ecclMax, comm));
  if (rsOut != (int32_t)rank + 1) return 6;

  /* all_to_all_v: rank r sends (r + p + 1) elements to p, each equal to 100 r + p. */
  uint64_t sc[N], sd[N], rc[N], rd[N], so = 0, ro = 0;
  for (int p = 0; p < N; ++p) {
    sc[p] = rank + p + 1;
    rc[p] = p + rank + 1;
    sd[p] = so;
    rd[p] = ro;
    so += sc[p];
    ro += rc[p];
  }
  int32_t* sbuf = malloc(so * 4);
  int32_t* rbuf = malloc(ro * 4);
  for (int p = 0; p < N; ++p)
    for (uint64_t i = 0; i < sc[p]; ++i) sbuf[sd[p] + i] = 100 * (int32_t)rank + p;
  CHECK(ecclAllToAllV(sbuf, sc, sd, ecclInt32, rbuf, rc, rd, ecclInt32, comm));
  for (int p = 0; p < N; ++p)
    for (uint64_t i = 0; i < rc[p]; ++i)
      if (rbuf[rd[p] + i] != 100 * p + (int32_t)rank) return 7;
  free(sbuf);
  free(rbuf);

  /* Batch: everyone sends to everyone else (sends listed first) and receives from everyone. */
  double sendv = rank * 1.5, recvv[N];
  ecclSendRecvItem items[2 * N];
  uint32_t k = 0;
  for (uint32_t p = 0; p < N; ++p)
    if (p != rank) items[k++] = (ecclSendRecvItem){ecclSendOp, &sendv, 1, ecclFloat64, p};
  for (uint32_t p = 0; p < N; ++p)
    if (p != rank) items[k++] = (ecclSendRecvItem){ecclRecvOp, &recvv[p], 1, ecclFloat64, p};
  CHECK(ecclBatchSendRecv(items, k, comm));
  for (uint32_t p = 0; p < N; ++p)
    if (p != rank && recvv[p] != p * 1.5) return 8;

  /* Again with both buffers registered once and named in the items. */
  ecclMemHandle_t sendh = NULL, recvh = NULL;
  CHECK(ecclCommRegister(comm, &sendv, sizeof sendv, &sendh));
  CHECK(ecclCommRegister(comm, recvv, sizeof recvv, &recvh));
  sendv = rank * 2.5;
  for (uint32_t i = 0; i < k; ++i) items[i].memHandle = items[i].type == ecclSendOp ? sendh : recvh;
  CHECK(ecclBatchSendRecv(items, k, comm));
  for (uint32_t p = 0; p < N; ++p)
    if (p != rank && recvv[p] != p * 2.5) return 20;
  /* A handle that does not hold the buffer, and one already released, are refused by name. */
  items[0].memHandle = items[0].type == ecclSendOp ? recvh : sendh;
  if (ecclBatchSendRecv(items, 1, comm) != ecclInvalidArgument) return 21;
  CHECK(ecclCommDeregister(comm, sendh));
  if (ecclCommDeregister(comm, sendh) != ecclInvalidArgument) return 22;
  if (strstr(ecclGetLastError(), "handle") == NULL) return 23;
  items[0].memHandle = sendh;
  if (ecclBatchSendRecv(items, 1, comm) != ecclInvalidArgument) return 24;
  if (strstr(ecclGetLastError(), "memHandle") == NULL) return 25;
  if (ecclCommRegister(comm, &sendv, 8, NULL) != ecclInvalidArgument) return 26;
  /* recvh is left registered: ecclCommDestroy releases it. */

  if (rank == 0) CHECK(ecclSend(&sendv, 1, ecclFloat64, 2, comm));
  if (rank == 2) {
    double got = -1;
    CHECK(ecclRecv(&got, 1, ecclFloat64, 0, comm));
    if (got != 0.0) return 9;
  }
  CHECK(ecclBarrier(comm));

  /* Tags: rank 0 sends tag 7 then tag 9; rank 1 posts its receives the other way round, async,
   * and each message lands in the receive of its own tag. */
  if (rank < 2) {
    int64_t t7 = 700 + rank, t9 = 900 + rank, got7 = -1, got9 = -1;
    ecclWork_t w9 = NULL, w7 = NULL;
    if (rank == 0) {
      CHECK(ecclIsend(&t7, 1, ecclInt64, 1, 7, comm, &w7));
      CHECK(ecclIsend(&t9, 1, ecclInt64, 1, 9, comm, &w9));
    } else {
      CHECK(ecclIrecv(&got9, 1, ecclInt64, 0, 9, comm, &w9));
      CHECK(ecclIrecv(&got7, 1, ecclInt64, 0, 7, comm, &w7));
    }
    CHECK(ecclWorkWait(w9, -1));
    CHECK(ecclWorkWait(w7, 60000));
    int done = 0;
    CHECK(ecclWorkTest(w7, &done));
    if (!done) return 50;
    CHECK(ecclWorkFree(w7));
    CHECK(ecclWorkFree(w9));
    if (ecclWorkFree(w9) != ecclInvalidArgument) return 51;
    if (rank == 1 && (got7 != 700 || got9 != 900)) return 52;
    if (ecclSendTagged(&t7, 1, ecclInt64, 1 - rank, UINT64_MAX, comm) != ecclInvalidArgument ||
        strstr(ecclGetLastError(), "ECCL_MAX_TAG") == NULL)
      return 53;
  }
  /* Async collectives, and the new element types. */
  uint8_t u8[2] = {(uint8_t)(200 + rank), 1}, u8max[2];
  ecclWork_t w = NULL;
  CHECK(ecclAllReduceAsync(u8, u8max, 2, ecclUint8, ecclMax, comm, &w));
  CHECK(ecclWorkWait(w, -1));
  CHECK(ecclWorkFree(w));
  if (u8max[0] != 200 + N - 1 || u8max[1] != 1) return 54;
  uint8_t f8[1] = {(uint8_t)rank}, f8all[N];
  CHECK(ecclAllGather(f8, f8all, 1, ecclFloat8E4M3, comm));
  if (f8all[N - 1] != N - 1) return 55;
  if (ecclAllReduce(f8, f8, 1, ecclFloat8E5M2, ecclSum, comm) != ecclInvalidArgument || strstr(ecclGetLastError(), "float8_e5m2") == NULL)
    return 56;
  if (ecclAllReduceAsync(f8, f8, 1, ecclFloat8E4M3, ecclSum, comm, &w) != ecclInvalidArgument || w != NULL) return 57;

  /* Errors are results with a message, never crashes. */
  if (ecclBroadcast(&b, 1, ecclInt64, 7, comm) != ecclInvalidArgument) return 10;
  if (strstr(ecclGetLastError(), "7") == NULL) return 11;
  if (ecclAllReduce(in, out, 1, (ecclDataType_t)42, ecclSum, comm) != ecclInvalidArgument) return 12;
  /* F8/F9: missing out-pointers and buffers, and counts whose size overflows, are errors. */
  if (ecclCommRank(comm, NULL) != ecclInvalidArgument || strstr(ecclGetLastError(), "rank") == NULL) return 30;
  if (ecclCommSize(comm, NULL) != ecclInvalidArgument) return 31;
  if (ecclCommGetAsyncError(comm, NULL) != ecclInvalidArgument) return 32;
  if (ecclAllGather(NULL, out, 1, ecclInt64, comm) != ecclInvalidArgument || strstr(ecclGetLastError(), "sendBuf") == NULL) return 33;
  if (ecclAllReduce(in, NULL, 1, ecclInt64, ecclSum, comm) != ecclInvalidArgument) return 34;
  if (ecclBroadcast(NULL, 4, ecclInt64, 0, comm) != ecclInvalidArgument) return 35;
  if (ecclSend(&sendv, UINT64_MAX / 2, ecclFloat64, 1, comm) != ecclInvalidArgument || strstr(ecclGetLastError(), "overflows") == NULL)
    return 36;
  if (ecclAllGather(in, out, UINT64_MAX / 4, ecclInt32, comm) != ecclInvalidArgument) return 37;
  ecclResult_t async = ecclInternalError;
  CHECK(ecclCommGetAsyncError(comm, &async));
  if (async != ecclSuccess) return 13;
  CHECK(ecclBarrier(comm));
  CHECK(ecclCommDestroy(comm));
  /* F15: a destroyed communicator is an error, not a crash. */
  uint32_t stale = 0;
  if (ecclCommRank(comm, &stale) != ecclInvalidArgument || strstr(ecclGetLastError(), "not a live communicator") == NULL) return 38;
  if (ecclBarrier(comm) != ecclInvalidArgument) return 39;
  if (ecclCommDestroy(comm) != ecclInvalidArgument) return 40;
  return 0;
}

int main(void) {
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t kids[N];
  for (uint32_t r = 1; r < N; ++r) {
    kids[r] = fork();
    if (kids[r] == 0) {
      ecclRootInfo root;
      if (read(fds[0], &root, sizeof(root)) != sizeof(root)) _exit(20);
      _exit(runRank(r, &root));
    }
  }
  uint32_t rank = 0;
  ecclRootInfo root;
  CHECK(ecclGetRootInfo(&root));
  for (uint32_t r = 1; r < N; ++r)
    if (write(fds[1], &root, sizeof(root)) != sizeof(root)) return 1;
  int rc = runRank(0, &root), failed = rc != 0;
  if (rc) fprintf(stderr, "rank 0 returned %d\n", rc);
  for (uint32_t r = 1; r < N; ++r) {
    int status = 0;
    waitpid(kids[r], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "rank %u exited with %d\n", r, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      failed = 1;
    }
  }
  printf(failed ? "C API test FAILED\n" : "C API test passed on %d ranks\n", N);
  return failed;
}
