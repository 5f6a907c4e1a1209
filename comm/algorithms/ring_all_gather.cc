#include "comm/algorithms/ring_all_gather.h"

namespace eccl::algo {

void ringAllGatherV(const CollectiveContext& c, uint8_t* buf, const std::vector<size_t>& offsets,
                    const std::vector<size_t>& bytes) {
  const int right = c.mod(c.rank + 1), left = c.mod(c.rank - 1);
  for (int s = 0; s < c.size - 1; ++s) {
    int sendBlock = c.mod(c.rank - s), recvBlock = c.mod(c.rank - s - 1);
    c.sendRecv(right, buf + offsets[sendBlock], bytes[sendBlock], left, buf + offsets[recvBlock], bytes[recvBlock]);
  }
}

}  // namespace eccl::algo
