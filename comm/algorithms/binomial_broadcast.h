// Binomial-tree broadcast: ⌈log2 N⌉ rounds; each rank receives once from its parent, then
// forwards to its children.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

void binomialBroadcast(const CollectiveContext& c, void* buf, size_t bytes, int root);

}  // namespace eccl::algo
