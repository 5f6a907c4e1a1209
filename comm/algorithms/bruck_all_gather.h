// Bruck all-gather: ⌈log2 N⌉ steps for any N (step k exchanges min(k, N−k) blocks with the ranks
// k away), then a local rotation. Latency-optimal for small blocks.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

// out receives N blocks of `bytes`, rank r's at r·bytes; `mine` is this rank's block (may alias
// its slot in out).
void bruckAllGather(const CollectiveContext& c, const void* mine, uint8_t* out, size_t bytes);

}  // namespace eccl::algo
