// The shared-memory transport, for ranks on one host: no kernel on the path of small messages,
// one copy for large ones.
//
//   small (≤ eagerBytes)  copied into a ring in the receiver's shared segment (one ring per
//                         sender) and out into the receive's buffer, or held as unexpected
//                         (within unexpectedBudget) until the receive is posted
//   large                 announced on the ring. Once its receive is posted, the receiver
//                         pulls it: the sender copies it chunk by chunk into slots of a pool
//                         in its own segment, the receiver copies each chunk out and frees the
//                         slot (two copies, pipelined, through memory both map — on the 2-core
//                         VM this was measured on, twice as fast as one cross-memory-attach
//                         copy, whose page pinning costs more than a second memcpy). With
//                         poolBytes 0 the receiver instead copies by cross-memory attach
//                         (process_vm_readv) straight from the sender's buffer (single copy,
//                         like Open MPI's vader with CMA). The sender's request completes
//                         once its last chunk is in the pool (its buffer is free; waiting for
//                         the receiver's copy too cost 2-rank all_gather ~15%), or, by
//                         cross-memory attach, when the receiver is done. isendAndCopy
//                         writes its local copy with the chunks, reading the buffer once
//                         (shm_copy.h).
//   reads (iread)         the reader copies from the owner's region by cross-memory attach,
//                         between two checks of the region's slot in the owner's segment
//
// Waiting: a waiting caller polls the rings itself (CallerProgress); a progress thread polls
// while operations are pending, then sleeps on a futex doorbell in its segment that writers ring.
// A side channel (TCP per peer) carries the handshake, aborts, goodbyes and liveness: a crashed
// peer fails every operation with it at once, naming it.
//
// Requirements: every peer on this host (equal host ids, see host_identity.h) and allowed to
// read this process's memory (same user, no ptrace restriction against it); connect() checks
// both and names the peer otherwise.
//
// Size mismatches fail the receive naming both sizes (the stream stays usable). Cancel: a
// receive is withdrawn at once (the message it would have matched is dropped); a send not yet
// read is revoked — cancel() returns when the receiver has agreed, and that receive fails
// naming the sender — or completes if the receiver had already copied it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "transport/transport.h"

namespace eccl::transport {

struct ShmOptions {
  static constexpr size_t kDefaultEagerBytes = 8 * 1024;
  // The default ring: 256 KiB per sender, less in large groups (at most ~8 MiB of rings per
  // rank; pages are only touched by the pairs that talk).
  static size_t defaultRingBytes(int groupSize);
  std::string host;     // address of the side channel; required
  std::string hostId;   // empty = localHostId()
  // Per sender, in each receiver's segment (a power of two); 0 = defaultRingBytes (or, through
  // createTransport, $ECCL_SHM_RING_BYTES).
  size_t ringBytes = 0;
  // Larger messages are copied by cross-memory attach; 0 = kDefaultEagerBytes (or, through
  // createTransport, $ECCL_SHM_EAGER_BYTES).
  size_t eagerBytes = 0;
  size_t unexpectedBudget = size_t(256) << 20;  // bytes held for receives not posted yet
  // This rank's pool for streaming large messages, in bytes, at most 1 GiB; 0 = none: receivers
  // copy its large messages by cross-memory attach. Unset = kDefaultPoolBytes (or, through
  // createTransport, $ECCL_SHM_POOL_BYTES). Pages are touched only as they are used.
  static constexpr size_t kDefaultPoolBytes = size_t(4) << 20;
  std::optional<size_t> poolBytes;
  // The pool's slot size: a multiple of 4096, at most the pool; 0 = kDefaultChunkBytes or the
  // pool if smaller (or, through createTransport, $ECCL_SHM_CHUNK_BYTES).
  static constexpr size_t kDefaultChunkBytes = size_t(256) << 10;
  size_t chunkBytes = 0;
};

std::unique_ptr<Transport> createShmTransport(GroupIdentity identity, ShmOptions options);

}  // namespace eccl::transport
