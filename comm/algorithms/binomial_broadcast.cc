#include "comm/algorithms/binomial_broadcast.h"

#include <vector>

namespace eccl::algo {

void binomialBroadcast(const CollectiveContext& c, void* buf, size_t bytes, int root) {
  const int vr = c.mod(c.rank - root);  // rank relative to the root
  int mask = 1;
  while (mask < c.size) {  // receive from the parent: clear the lowest set bit
    if (vr & mask) {
      c.t.irecv(c.mod(vr - mask + root), c.tag, buf, bytes)->wait(c.deadline);
      break;
    }
    mask <<= 1;
  }
  std::vector<transport::RequestPtr> sends;
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (vr + mask < c.size) sends.push_back(c.t.isend(c.mod(vr + mask + root), c.tag, buf, bytes));
  c.waitAll(sends);
}

}  // namespace eccl::algo
