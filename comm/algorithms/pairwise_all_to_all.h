// All-to-all with per-peer sizes (the MoE dispatch pattern): every receive and send posted at
// once, so the transport overlaps them; the self block is a local copy.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

// Byte counts and offsets, one per rank.
void pairwiseAllToAllV(const CollectiveContext& c, const uint8_t* send, const std::vector<size_t>& sendBytes,
                       const std::vector<size_t>& sendOffsets, uint8_t* recv, const std::vector<size_t>& recvBytes,
                       const std::vector<size_t>& recvOffsets);

}  // namespace eccl::algo
