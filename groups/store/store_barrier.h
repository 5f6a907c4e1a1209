// A barrier over a Store: returns once `size` callers have entered the barrier named `name`.
// Each caller does one ADD and one WAIT (the last to arrive sets the release key), so the store
// sees O(size) commands. Names must not be reused within one store prefix; use e.g. an epoch or
// a counter in the name. Throws Error(kTimeout) naming the barrier, how many had arrived, and
// the store when the timeout passes.
#pragma once

#include <string>

#include "groups/store/store.h"

namespace eccl {

void storeBarrier(Store& store, const std::string& name, int size, StoreTimeout timeout = std::nullopt);

}  // namespace eccl
