#include "comm/algorithms/pairwise_all_to_all.h"

#include <cstring>

#include "base/error.h"

namespace eccl::algo {

void pairwiseAllToAllV(const CollectiveContext& c, const uint8_t* send, const std::vector<size_t>& sendBytes,
                       const std::vector<size_t>& sendOffsets, uint8_t* recv, const std::vector<size_t>& recvBytes,
                       const std::vector<size_t>& recvOffsets) {
  std::vector<transport::RequestPtr> reqs;
  // Peers in the order rank+1, rank+2, ...: every rank starts with a different partner.
  for (int k = 1; k < c.size; ++k) {
    int from = c.mod(c.rank - k);
    reqs.push_back(c.t.irecv(from, c.tag, recv + recvOffsets[from], recvBytes[from]));
  }
  for (int k = 1; k < c.size; ++k) {
    int to = c.mod(c.rank + k);
    reqs.push_back(c.t.isend(to, c.tag, send + sendOffsets[to], sendBytes[to]));
  }
  if (sendBytes[c.rank] != recvBytes[c.rank])
    throw Error(ErrorCode::kInvalidArgument, "all_to_all_v: rank " + std::to_string(c.rank) + " sends itself " +
                                                 std::to_string(sendBytes[c.rank]) + " bytes but expects " +
                                                 std::to_string(recvBytes[c.rank]));
  if (sendBytes[c.rank]) std::memmove(recv + recvOffsets[c.rank], send + sendOffsets[c.rank], sendBytes[c.rank]);
  c.waitAll(reqs);
}

}  // namespace eccl::algo
