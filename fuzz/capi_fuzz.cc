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
    switch (in.take<uint8_t>() % 9) {
      case 0: expectSane(ecclAllGather(pick(in, bufA), pick(in, bufB), count(in), type, comm)); break;
      case 1: expectSane(ecclAllReduce(pick(in, bufA), pick(in, bufB), count(in), type, op, comm)); break;
      case 2: expectSane(ecclBroadcast(pick(in, bufA), count(in), type, rank, comm)); break;
      case 3: expectSane(ecclReduceScatter(pick(in, bufA), pick(in, bufB), count(in), type, op, comm)); break;
      case 4: {
        uint64_t sc[1] = {count(in)}, sd[1] = {uint64_t(in.take<uint8_t>() % 8)}, rc[1] = {sc[0]}, rd[1] = {uint64_t(in.take<uint8_t>() % 8)};
        expectSane(ecclAllToAllV(pick(in, bufA), in.take<uint8_t>() % 5 ? sc : nullptr, sd, type, pick(in, bufB), rc,
                                 in.take<uint8_t>() % 5 ? rd : nullptr, type, comm));
        break;
      }
      case 5: {  // a batch: sends and receives to self pair up; a lone one must not be posted
        ecclSendRecvItem items[2];
        const uint64_t n = count(in);
        items[0] = {ecclSendOp, pick(in, bufA), n, type, rank, nullptr};
        items[1] = {ecclRecvOp, pick(in, bufB), n, type, rank, nullptr};
        if (rank == 0 && (n >> 63) == 0 && items[0].buf && items[1].buf && type <= ecclFloat64)
          expectSane(ecclBatchSendRecv(items, 2, comm));
        else if (rank != 0 || (n >> 63))
          expectSane(ecclBatchSendRecv(items, in.take<uint8_t>() % 3, comm));
        break;
      }
      case 6: {
        uint32_t v = 0;
        ecclResult_t a = ecclSuccess;
        const bool null = in.take<uint8_t>() % 2;
        expectSane(ecclCommRank(comm, null ? nullptr : &v));
        expectSane(ecclCommSize(comm, null ? nullptr : &v));
        expectSane(ecclCommGetAsyncError(comm, null ? nullptr : &a));
        break;
      }
      case 7: {
        ecclMemHandle_t h = nullptr;
        const size_t bytes = in.take<uint8_t>() % 2 ? sizeof(bufA) : 0;
        ecclResult_t r = ecclCommRegister(comm, pick(in, bufA), bytes, &h);
        expectSane(r);
        if (r == ecclSuccess) expectSane(ecclCommDeregister(comm, h));
        expectSane(ecclCommDeregister(comm, reinterpret_cast<ecclMemHandle_t>(bufB)));  // not a handle
        break;
      }
      default: expectSane(ecclSend(pick(in, bufA), count(in), type, rank + 1, comm)); break;  // no such peer
    }
  }
  // Still usable.
  if (ecclAllReduce(bufA, bufB, 4, ecclInt32, ecclSum, comm) != ecclSuccess) std::abort();
  return 0;
}
