// copyToSlotAndLocal: both destinations get exactly the source, whatever the length (whole
// cache lines, a tail, nothing) and the alignment of each buffer; nothing beyond is touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "transport/shm/shm_copy.h"

namespace eccl::transport::shm {
namespace {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};

TEST(ShmCopy, BothDestinationsGetTheSourceForEveryLengthAndAlignment) {
  const size_t most = (size_t(256) << 10) + 200;
  const size_t area = (most + 4096 + 4095) & ~size_t(4095);  // (aligned_alloc wants a multiple)
  std::unique_ptr<uint8_t, AlignedFree> slotArea(static_cast<uint8_t*>(std::aligned_alloc(4096, area)));
  std::vector<uint8_t> src(most + 64), local(most + 64);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (size_t n : {size_t(4096), size_t(4096 + 17), size_t(256) << 10, (size_t(256) << 10) + 199}) lengths.push_back(n);
  for (size_t n : lengths)
    for (size_t slotOffset : {size_t(0), size_t(16), size_t(3)})  // (3: the plain path)
      for (size_t srcOffset : {size_t(0), size_t(5)})
        for (size_t localOffset : {size_t(0), size_t(9)}) {
          uint8_t* slot = slotArea.get() + slotOffset;
          std::fill(slotArea.get(), slotArea.get() + area, 0xEE);
          std::fill(local.begin(), local.end(), 0xDD);
          copyToSlotAndLocal(slot, local.data() + localOffset, src.data() + srcOffset, n);
          SCOPED_TRACE(std::to_string(n) + " bytes, offsets slot " + std::to_string(slotOffset) + " source " +
                       std::to_string(srcOffset) + " local " + std::to_string(localOffset));
          ASSERT_EQ(0, std::memcmp(slot, src.data() + srcOffset, n));
          ASSERT_EQ(0, std::memcmp(local.data() + localOffset, src.data() + srcOffset, n));
          ASSERT_EQ(slot[n], 0xEE) << "written past the slot's range";
          if (slotOffset) {
            ASSERT_EQ(slot[-1], 0xEE) << "written before the slot's range";
          }
          ASSERT_EQ(local[localOffset + n], 0xDD) << "written past the local range";
          if (localOffset) {
            ASSERT_EQ(local[localOffset - 1], 0xDD) << "written before the local range";
          }
        }
}

}  // namespace
}  // namespace eccl::transport::shm
