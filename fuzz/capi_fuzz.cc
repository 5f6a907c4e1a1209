// The C API's argument checks, on a live one-rank communicator: random calls with NULL or valid
// buffers, out-of-range ranks, roots, data types and ops, counts that overflow, NULL out-pointers
// and unknown handles. Invariants: every call returns (no crash, no hang), a bad argument is
// ecclInvalidArgument with a message, and the communicator still works afterwards.
#include <cstdlib>
#include <cstring>

#include "fuzz/fuzz_input.h"
#include "groups/capi/eccl.h"

namespace {

ecclComm_t comm = nullptr;
alignas(64) uint8_t bufA[4096], bufB[4096];

void* pick(eccl::fuzz::FuzzInput& in, uint8_t* valid) {
  switch (in.take<uint8_t>() % 4) {
    case 0: return nullptr;
    default: return valid;
  }
}

// Small counts fit the 4 KiB buffers for any type; huge ones must be refused before any copy.
uint64_t count(eccl::fuzz::FuzzInput& in) {
  uint8_t c = in.take<uint8_t>();
  if (c < 200) return c % 65;
  return (uint64_t(1) << 63) | in.take<uint64_t>();
}

void expectSane(ecclResult_t r) {
  if (r != ecclSuccess && r != ecclInvalidArgument) {
    std::fprintf(stderr, "unexpected result %d: %s\n", int(r), ecclGetLastError());
    std::abort();
  }
  if (r == ecclInvalidArgument && std::strlen(ecclGetLastError()) == 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("ECCL_TRANSPORT", "socket", 1);
  ecclRootInfo info;
  if (ecclGetRootInfo(&info) != ecclSuccess || ecclCommInitRootInfo(1, &info, 0, &comm) != ecclSuccess) {
    std::fprintf(stderr, "cannot build a one-rank communicator: %s\n", ecclGetLastError());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  eccl::fuzz::FuzzInput in(data, size);
  for (int calls = 0; calls < 16 && !in.empty(); ++calls) {
    const auto type = static_cast<ecclDataType_t>(in.take<uint8_t>() % 9);  // 7 and 8 are not types
    const auto op = static_cast<ecclRedOp_t>(in.take<uint8_t>() % 6);
    const uint32_t rank = in.take<uint8_t>() % 3;  // 0 is the only rank
    // Every value is read into a named local first: argument evaluation order differs between
    // GCC and clang, and the corpus must mean the same calls under both.
    const uint8_t call = in.take<uint8_t>() % 9;
    void* const a = pick(in, bufA);
    void* const b = pick(in, bufB);
    const uint64_t n = count(in);
    switch (call) {
      case 0: expectSane(ecclAllGather(a, b, n, type, comm)); break;
      case 1: expectSane(ecclAllReduce(a, b, n, type, op, comm)); break;
      case 2: expectSane(ecclBroadcast(a, n, type, rank, comm)); break;
      case 3: expectSane(ecclReduceScatter(a, b, n, type, op, comm)); break;
      case 4: {
        const uint64_t sd0 = in.take<uint8_t>() % 8, rd0 = in.take<uint8_t>() % 8;
        const bool withCounts = in.take<uint8_t>() % 5, withRdispls = in.take<uint8_t>() % 5;
        uint64_t sc[1] = {n}, sd[1] = {sd0}, rc[1] = {n}, rd[1] = {rd0};
        expectSane(ecclAllToAllV(a, withCounts ? sc : nullptr, sd, type, b, rc, withRdispls ? rd : nullptr, type, comm));
        break;
      }
      case 5: {  // a batch: sends and receives to self pair up; a lone one must not be posted
        ecclSendRecvItem items[2];
        items[0] = {ecclSendOp, a, n, type, rank, nullptr};
        items[1] = {ecclRecvOp, b, n, type, rank, nullptr};
        const uint32_t itemNum = in.take<uint8_t>() % 3;
        if (rank == 0 && (n >> 63) == 0 && a && b && type <= ecclFloat64)
          expectSane(ecclBatchSendRecv(items, 2, comm));
        else if (rank != 0 || (n >> 63))
          expectSane(ecclBatchSendRecv(items, itemNum, comm));
        break;
      }
      case 6: {
        uint32_t v = 0;
        ecclResult_t asyncErr = ecclSuccess;
        const bool null = in.take<uint8_t>() % 2;
        expectSane(ecclCommRank(comm, null ? nullptr : &v));
        expectSane(ecclCommSize(comm, null ? nullptr : &v));
        expectSane(ecclCommGetAsyncError(comm, null ? nullptr : &asyncErr));
        break;
      }
      case 7: {
        ecclMemHandle_t h = nullptr;
        const size_t bytes = in.take<uint8_t>() % 2 ? sizeof(bufA) : 0;
        ecclResult_t r = ecclCommRegister(comm, a, bytes, &h);
        expectSane(r);
        if (r == ecclSuccess) expectSane(ecclCommDeregister(comm, h));
        expectSane(ecclCommDeregister(comm, reinterpret_cast<ecclMemHandle_t>(bufB)));  // not a handle
        break;
      }
      default: expectSane(ecclSend(a, n, type, rank + 1, comm)); break;  // no such peer
    }
  }
  // Still usable.
  if (ecclAllReduce(bufA, bufB, 4, ecclInt32, ecclSum, comm) != ecclSuccess) std::abort();
  return 0;
}
