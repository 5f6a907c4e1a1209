// What a rank's shared segment holds and what its rings carry. Rank r's segment:
//
//   SegmentHeader     identity, the doorbell its progress thread sleeps on, the registration
//                     table peers check around reads
//   ring from rank 0  (RingIndices + ringBytes)   written by rank 0, read by rank r
//   ring from rank 1
//   ...               (the ring at index r is unused: messages to oneself never leave the process)
//   pool              (page-aligned) chunk slots through which r streams its large messages to
//                     receivers that pull them (kPull); r alone hands out slots
//
// Records (after RecordHeader):
//   kEager     a whole message: MessageRecord, then its bytes
//   kAnnounce  a large message (rendezvous): MessageRecord with the sender's address of the
//              bytes and a send id. Once its receive is posted, the receiver either copies them
//              by cross-memory attach (process_vm_readv) straight into the receive's buffer and
//              answers kDone, or answers kPull
//   kPull      ControlRecord: stream send id through your pool
//   kGrant     MessageRecord (tag, seq): the receive of that message is posted; stream it through
//              your pool as soon as it is sent (or at once, if announced already), no kPull needed
//   kChunk     ChunkRecord: `length` bytes of send id from `offset` are in pool slot `slot`
//   kFreed     ChunkRecord: the receiver copied slot `slot` out; it is the sender's again
//   kDone      ControlRecord: the receiver is finished with send id (copied, or dropped)
//   kRevoke    ControlRecord: the sender cancels send id and waits for kRevoked or kDone
//   kRevoked   ControlRecord: send id was not read and never will be; its receive fails
#pragma once

#include <atomic>
#include <cstdint>

#include "transport/shm/shm_ring.h"

namespace eccl::transport::shm {

inline constexpr uint64_t kSegmentMagic = 0x3368732d6c636365;  // "eccl-sh3" (the chunk pool added)
inline constexpr size_t kRegistrationSlots = 4096;
inline constexpr size_t kMaxPoolBytes = size_t(1) << 30;

struct SegmentHeader {
  uint64_t magic = 0;
  uint64_t identity = 0;  // hash of group, epoch, size (the handshake checks the full identity)
  int32_t rank = 0;
  int32_t size = 0;
  uint64_t ringBytes = 0;
  // The progress thread sleeps on `doorbell` (a futex) after setting `sleeping`; a writer that
  // sees `sleeping` bumps `doorbell` and wakes it.
  alignas(64) std::atomic<uint32_t> doorbell{0};
  alignas(64) std::atomic<uint32_t> sleeping{0};
  // Set (before any of its announced sends is failed) once the owner broke or is destroyed: its
  // send buffers may be reused from then on, so a receiver that copied one checks this after
  // the copy and fails the receive if it is set.
  alignas(64) std::atomic<uint32_t> closed{0};
  // Why it broke (NUL-terminated, cut to fit), written before `closed` is set: a receiver whose
  // copy it spoiled names the first cause (the rank that died), not just this rank.
  char closedReason[512] = {};
  // Slot i holds the key of the registration using it, 0 when free: a reader checks it before
  // and after copying, so a read of a deregistered region fails instead of copying freed memory.
  alignas(64) std::atomic<uint64_t> registrations[kRegistrationSlots];
};
static_assert(std::atomic<uint32_t>::is_always_lock_free);

inline size_t headerBytes() { return (sizeof(SegmentHeader) + 4095) & ~size_t(4095); }
inline size_t poolOffset(int ranks, size_t ringCapacity) {
  return (headerBytes() + static_cast<size_t>(ranks) * ringBytes(ringCapacity) + 4095) & ~size_t(4095);
}
inline size_t segmentBytes(int ranks, size_t ringCapacity, size_t poolBytes) { return poolOffset(ranks, ringCapacity) + poolBytes; }
inline uint8_t* ringAt(uint8_t* segment, int from, size_t ringCapacity) {
  return segment + headerBytes() + static_cast<size_t>(from) * ringBytes(ringCapacity);
}

enum RecordType : uint16_t { kEager = 1, kAnnounce = 2, kDone = 3, kRevoke = 4, kRevoked = 5, kPull = 6, kChunk = 7, kFreed = 8, kGrant = 9 };

struct MessageRecord {
  RecordHeader h;
  uint64_t tag = 0;
  uint64_t seq = 0;
  uint64_t bytes = 0;    // of the message
  uint64_t address = 0;  // kAnnounce: where the sender's bytes are
  uint64_t sendId = 0;   // kAnnounce
};

struct ControlRecord {
  RecordHeader h;
  uint64_t sendId = 0;
};

struct ChunkRecord {
  RecordHeader h;
  uint64_t sendId = 0;
  uint64_t offset = 0;  // in the message
  uint64_t length = 0;
  uint64_t slot = 0;    // in the sender's pool
};

}  // namespace eccl::transport::shm
