// The argument checks every transport makes before posting an operation, written once so all
// transports refuse the same inputs with the same words.
#pragma once

#include <cstddef>

#include "transport/transport.h"

namespace eccl::transport {

// Checks that `peer` is a rank of the group and that `region`, when given, is a live
// registration that holds [data, data + bytes). Throws Error(kInvalidArgument) naming the
// operation ("send", "receive", "read"), the size, and what is wrong.
void checkOperation(const GroupIdentity& id, int peer, const char* op, const void* data, size_t bytes,
                    const MemoryRegion* region);

}  // namespace eccl::transport
