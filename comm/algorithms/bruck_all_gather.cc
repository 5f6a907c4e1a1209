#include "comm/algorithms/bruck_all_gather.h"

#include <cstring>
#include <vector>

namespace eccl::algo {

void bruckAllGather(const CollectiveContext& c, const void* mine, uint8_t* out, size_t bytes) {
  // tmp holds blocks of ranks rank, rank+1, ... (mod N) in that order.
  std::vector<uint8_t> tmp(bytes * c.size);
  if (bytes) std::memcpy(tmp.data(), mine, bytes);
  for (int k = 1; k < c.size; k *= 2) {
    const int count = std::min(k, c.size - k);
    c.sendRecv(c.mod(c.rank - k), tmp.data(), count * bytes, c.mod(c.rank + k), tmp.data() + k * bytes, count * bytes);
  }
  for (int i = 0; i < c.size; ++i)
    if (bytes) std::memmove(out + c.mod(c.rank + i) * bytes, tmp.data() + i * bytes, bytes);
}

}  // namespace eccl::algo
