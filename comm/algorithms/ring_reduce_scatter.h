// Ring reduce-scatter: N−1 steps; at step s each rank sends its partial sum of block r−s−1 to
// the right and adds the block r−s−2 arriving from the left, so block r ends fully reduced on
// rank r. Bandwidth-optimal; the reduction order is fixed, so results are deterministic.
#pragma once

#include <vector>

#include "comm/algorithms/collective_context.h"
#include "comm/types.h"

namespace eccl::algo {

// work holds the whole input (count elements) and is reduced in place; blocks are given in
// elements. Afterwards work's block `rank` holds the reduction of everyone's block `rank`.
void ringReduceScatter(const CollectiveContext& c, uint8_t* work, const std::vector<size_t>& offsets,
                       const std::vector<size_t>& counts, DataType type, ReduceOp op);

}  // namespace eccl::algo
