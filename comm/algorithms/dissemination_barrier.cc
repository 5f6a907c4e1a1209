#include "comm/algorithms/dissemination_barrier.h"

namespace eccl::algo {

void disseminationBarrier(const CollectiveContext& c) {
  uint8_t out = 1, in = 0;
  for (int k = 1; k < c.size; k *= 2) c.sendRecv(c.mod(c.rank + k), &out, 1, c.mod(c.rank - k), &in, 1);
}

}  // namespace eccl::algo
