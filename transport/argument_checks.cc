#include "transport/argument_checks.h"

#include <sys/resource.h>

#include <string>

#include "base/error.h"

namespace eccl::transport {

void checkOperation(const GroupIdentity& id, int peer, const char* op, const void* data, size_t bytes,
                    const MemoryRegion* region) {
  if (peer < 0 || peer >= id.size)
    throw Error(ErrorCode::kInvalidArgument, id.describe() + ": " + op + " of " + std::to_string(bytes) +
                                                 " bytes names peer " + std::to_string(peer) + ", outside 0.." +
                                                 std::to_string(id.size - 1));
  if (region && (region->id == 0 || !region->contains(data, bytes)))
    throw Error(ErrorCode::kInvalidArgument,
                id.describe() + ": " + op + " of " + std::to_string(bytes) + " bytes: the region given (" +
                    std::to_string(region->bytes) + " bytes" + (region->id == 0 ? ", not registered" : "") +
                    ") does not contain the buffer");
}

void checkCopyTarget(const GroupIdentity& id, int peer, const void* data, size_t bytes, const void* copyTo) {
  if (!bytes) return;
  const auto d = reinterpret_cast<uintptr_t>(data), c = reinterpret_cast<uintptr_t>(copyTo);
  const char* wrong = !copyTo ? "is null" : (c < d + bytes && d < c + bytes) ? "overlaps the message" : nullptr;
  if (wrong)
    throw Error(ErrorCode::kInvalidArgument, id.describe() + ": send of " + std::to_string(bytes) + " bytes to rank " +
                                                 std::to_string(peer) + " with a local copy: the copy's destination " + wrong);
}

void checkRegistration(const GroupIdentity& id, const char* transport, const void* ptr, size_t bytes, MemoryKind kind) {
  if (kind != MemoryKind::kHost)
    throw Error(ErrorCode::kInvalidArgument, id.describe() + ": " + transport + " registers host memory only (no device-memory support yet)");
  if (!ptr || bytes == 0)
    throw Error(ErrorCode::kInvalidArgument, id.describe() + ": registering " + std::to_string(bytes) + " bytes at " +
                                                 (ptr ? "a valid pointer" : "a null pointer") + ": need a non-empty range");
}

std::string lockedMemoryHint() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_MEMLOCK, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return "";
  return "; the locked-memory limit (ulimit -l) is " + std::to_string(lim.rlim_cur / 1024) + " KiB";
}

}  // namespace eccl::transport
