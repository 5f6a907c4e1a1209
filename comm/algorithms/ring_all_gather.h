// Ring all-gather with per-rank block sizes (all_gather_v): N−1 steps, each rank forwards the
// block it received last to its right neighbour. Bandwidth-optimal for large blocks.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

// buf holds every rank's block at offsets[r] (bytes[r] long); this rank's block is in place.
void ringAllGatherV(const CollectiveContext& c, uint8_t* buf, const std::vector<size_t>& offsets,
                    const std::vector<size_t>& bytes);

}  // namespace eccl::algo
