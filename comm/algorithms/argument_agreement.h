// Checking that every rank passed the same arguments to a collective whose data path could not
// notice otherwise (a broadcast whose ranks name different roots would "succeed" on every rank
// with different data). ⌈log2 N⌉ dissemination rounds of 16 bytes per value: each rank folds
// the minimum and maximum it has seen into what it forwards, so after the last round every rank
// holds the group-wide extremes and reaches the same verdict.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/algorithms/collective_context.h"

namespace eccl::algo {

struct AgreedArgument {
  const char* name;  // "root", "bytes", ... (used in the error)
  uint64_t value;    // this rank's value
};

// Throws Error(kInvalidArgument) on every rank when any value differs between ranks, naming
// the collective (`what`), the argument and the smallest and largest value passed.
void requireAgreement(const CollectiveContext& c, const std::string& what, const std::vector<AgreedArgument>& args);

}  // namespace eccl::algo
