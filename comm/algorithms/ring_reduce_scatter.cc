#include "comm/algorithms/ring_reduce_scatter.h"

#include <algorithm>

namespace eccl::algo {

void ringReduceScatter(const CollectiveContext& c, uint8_t* work, const std::vector<size_t>& offsets,
                       const std::vector<size_t>& counts, DataType type, ReduceOp op) {
  const size_t es = dataTypeSize(type);
  const int right = c.mod(c.rank + 1), left = c.mod(c.rank - 1);
  std::vector<uint8_t> incoming(*std::max_element(counts.begin(), counts.end()) * es);
  for (int s = 0; s < c.size - 1; ++s) {
    int sendBlock = c.mod(c.rank - s - 1), recvBlock = c.mod(c.rank - s - 2);
    c.sendRecv(right, work + offsets[sendBlock] * es, counts[sendBlock] * es, left, incoming.data(), counts[recvBlock] * es);
    reduceInto(work + offsets[recvBlock] * es, incoming.data(), counts[recvBlock], type, op);
  }
}

}  // namespace eccl::algo
