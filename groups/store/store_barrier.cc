#include "groups/store/store_barrier.h"

#include "base/error.h"

namespace eccl {

void storeBarrier(Store& store, const std::string& name, int size, StoreTimeout timeout) {
  if (size <= 0) throw Error(ErrorCode::kInvalidArgument, "barrier '" + name + "': size must be positive, got " + std::to_string(size));
  const std::string count = "barrier/" + name + "/count";
  const std::string done = "barrier/" + name + "/done";
  int64_t arrived = store.add(count, 1);
  if (arrived > size)
    throw Error(ErrorCode::kInvalidArgument, "barrier '" + name + "' on " + store.describe() + " entered " +
                                                 std::to_string(arrived) + " times for size " + std::to_string(size) +
                                                 " (name reused?)");
  if (arrived == size) store.set(done, asBytes("1"));
  try {
    store.wait({done}, timeout);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kTimeout) throw;
    auto now = store.tryGet(count);
    throw Error(ErrorCode::kTimeout, "barrier '" + name + "' on " + store.describe() + " timed out with " +
                                         (now ? toString(*now) : std::string("?")) + " of " + std::to_string(size) +
                                         " arrived");
  }
}

}  // namespace eccl
