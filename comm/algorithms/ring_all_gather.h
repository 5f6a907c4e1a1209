// Ring all-gather with per-rank block sizes (all_gather_v): N−1 steps, each rank forwards the
// block it received last to its right neighbour. Bandwidth-optimal for large blocks.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

// buf holds every rank's block at offsets[r] (bytes[r] long). This rank's block is in place, or,
// when `own` is given, at `own`: then the first step sends from `own` and copies it into place
// while the first exchange is under way (the copy costs as much as a transfer on one host).
void ringAllGatherV(const CollectiveContext& c, uint8_t* buf, const std::vector<size_t>& offsets,
                    const std::vector<size_t>& bytes, const uint8_t* own = nullptr);

}  // namespace eccl::algo
