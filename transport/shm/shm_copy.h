// Copying a large message's chunk into our pool slot and, in the same pass, to a local
// destination (ShmTransport::isendAndCopy: a collective's own block, which it sends and also
// keeps — NCCL's "copy-send").
//
// Why one pass: on the 2-core VM this was measured on, a separate memcpy of the own block cost
// ~22 µs per MiB on top of ~31 µs for the pool copy; reading the source once and writing both
// costs ~34 µs in all (a 2-rank 1 MiB all-gather: 85 → 62 µs in a stand-alone test).
// The pool side uses non-temporal stores: ordinary vector stores into lines the receiver has
// just read (shared in its cache) each wait for an ownership request and were ~5× slower there;
// streaming stores need none (glibc's memcpy avoids them with `rep movsb`, which cannot write two
// destinations).
#pragma once

#include <cstddef>
#include <cstdint>

namespace eccl::transport::shm {

// Copies `bytes` from `src` to both `slot` (in the pool) and `local`. Regions must not overlap.
// Ends with a store fence, so a record published after it (a release store) orders after the
// slot's bytes.
void copyToSlotAndLocal(uint8_t* slot, uint8_t* local, const uint8_t* src, size_t bytes);

}  // namespace eccl::transport::shm
