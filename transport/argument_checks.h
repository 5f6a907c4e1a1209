// The argument checks every transport makes before posting an operation, and the hint its
// registration errors end with, written once so all transports use the same words.
#pragma once

#include <cstddef>
#include <string>

#include "transport/transport.h"

namespace eccl::transport {

// Checks that `peer` is a rank of the group and that `region`, when given, is a live
// registration that holds [data, data + bytes). Throws Error(kInvalidArgument) naming the
// operation ("send", "receive", "read"), the size, and what is wrong.
void checkOperation(const GroupIdentity& id, int peer, const char* op, const void* data, size_t bytes,
                    const MemoryRegion* region);

// Checks isendAndCopy's local destination: not null when there are bytes to copy, and not
// overlapping the message. Throws Error(kInvalidArgument) naming the peer, the size and why.
void checkCopyTarget(const GroupIdentity& id, int peer, const void* data, size_t bytes, const void* copyTo);

// Checks a registration: host memory (`transport` names who refuses device memory, e.g. "the
// verbs transport") and a non-empty range at a non-null pointer. Throws Error(kInvalidArgument).
void checkRegistration(const GroupIdentity& id, const char* transport, const void* ptr, size_t bytes, MemoryKind kind);

// "; the locked-memory limit (ulimit -l) is 8192 KiB" when a limit applies, else "": what
// a failed registration most often ran into.
std::string lockedMemoryHint();

}  // namespace eccl::transport
