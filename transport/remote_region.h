// The exported form of a registered region (Transport::exportRegion / iread), shared by every
// transport: which transport made it, whose it is, where it is and the key that opens it.
// Wire form (64 bytes, host order): u32 magic "ECRG", u8 transport, u8 0, u16 0, i32 owner rank,
// u32 0, u64 address, u64 bytes, u64 key, u64 guard table address, u64 guard key, u64 guard slot.
#pragma once

#include <cstdint>

#include "transport/transport.h"

namespace eccl::transport {

enum class TransportKind : uint8_t { kSocket = 1, kOfi = 2, kVerbs = 3, kShm = 4 };
const char* transportKindName(TransportKind kind);

struct RemoteRegion {
  TransportKind transport = TransportKind::kSocket;
  int owner = 0;
  uint64_t address = 0;  // the owner's virtual address of the region's first byte
  uint64_t bytes = 0;
  uint64_t key = 0;      // the transport's remote key
  // Transports whose reads a provider does not check against deregistration (libfabric shm
  // reads by cross-memory attach whatever the key) publish a guard: word `guardSlot` of a table
  // at `guardAddress`, readable with `guardKey`, holds `key` exactly while the region is
  // registered. A reader checks it before and after the data (0 = no guard).
  uint64_t guardAddress = 0, guardKey = 0, guardSlot = 0;
  RegionBlob encode() const;
};

// Decodes `blob` and checks it is a `kind` region of `peer` that holds [offset, offset + bytes).
// Throws Error(kInvalidArgument) naming the reader, the peer, the range and what is wrong.
RemoteRegion checkedRemoteRegion(const GroupIdentity& reader, TransportKind kind, int peer, const RegionBlob& blob,
                                 size_t offset, size_t bytes);

}  // namespace eccl::transport
