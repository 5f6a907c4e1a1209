#include "transport/region_guards.h"

#include "base/error.h"

namespace eccl::transport {

RegionGuards::RegionGuards() : words_(std::make_unique<uint64_t[]>(kSlots)) {  // zeroed: all free
  for (size_t i = kSlots; i-- > 0;) free_.push_back(i);
}

size_t RegionGuards::take(uint64_t key, const std::string& who) {
  if (free_.empty())
    throw Error(ErrorCode::kInvalidArgument, who + ": more than " + std::to_string(kSlots) + " regions registered at once");
  const size_t slot = free_.back();
  free_.pop_back();
  __atomic_store_n(&words_[slot], key, __ATOMIC_RELEASE);
  return slot;
}

void RegionGuards::release(size_t slot) {
  __atomic_store_n(&words_[slot], uint64_t(0), __ATOMIC_SEQ_CST);
  free_.push_back(slot);
}

}  // namespace eccl::transport
