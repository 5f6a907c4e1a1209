// Dissemination barrier: ⌈log2 N⌉ rounds of 1-byte messages to rank+2^k / from rank−2^k.
#pragma once

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

void disseminationBarrier(const CollectiveContext& c);

}  // namespace eccl::algo
