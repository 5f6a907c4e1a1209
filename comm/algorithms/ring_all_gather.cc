#include "comm/algorithms/ring_all_gather.h"

#include <cstring>

namespace eccl::algo {

void ringAllGatherV(const CollectiveContext& c, uint8_t* buf, const std::vector<size_t>& offsets,
                    const std::vector<size_t>& bytes, const uint8_t* own) {
  const int right = c.mod(c.rank + 1), left = c.mod(c.rank - 1);
  uint8_t* mine = buf + offsets[c.rank];
  if (own == mine) own = nullptr;
  if (c.size == 1) {
    if (own && bytes[c.rank]) std::memcpy(mine, own, bytes[c.rank]);
    return;
  }
  for (int s = 0; s < c.size - 1; ++s) {
    int sendBlock = c.mod(c.rank - s), recvBlock = c.mod(c.rank - s - 1);
    if (s == 0 && own) {
      // The own block is sent and copied into place in one pass where the transport can.
      auto r = c.t.irecv(left, c.tag, buf + offsets[recvBlock], bytes[recvBlock]);
      auto w = c.t.isendAndCopy(right, c.tag, own, bytes[c.rank], mine);
      r->wait(c.deadline);
      w->wait(c.deadline);
      continue;
    }
    c.sendRecv(right, buf + offsets[sendBlock], bytes[sendBlock], left, buf + offsets[recvBlock], bytes[recvBlock]);
  }
}

}  // namespace eccl::algo
