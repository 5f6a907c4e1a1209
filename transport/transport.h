// The transport seam: how bytes move between the ranks of one group. Shaped after NCCL's net
// plugin (listen/connect, register memory, tagged isend/irecv, test) and Gloo's pair/unbound
// buffer, so sockets, libfabric and verbs fit behind it without changing callers.
//
// One Transport object serves one group (one rank's view of it). Lifecycle:
//   t = createXTransport(identity, options);     // listens; address() is ready
//   publish t->address() (e.g. in the store); collect every rank's address
//   t->connect(addresses, deadline);             // every rank calls it
//   t->isend / t->irecv / t->isendAndCopy ...    // any thread
//   destroy (destructor): always succeeds, also when peers are gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/deadline.h"
#include "base/give_up.h"
#include "base/error.h"

namespace eccl::transport {

using Tag = uint64_t;
using AddressBlob = std::vector<uint8_t>;

// Who this transport belongs to; the connection handshake checks all of it, so a connection from
// another group or an older epoch is refused.
struct GroupIdentity {
  std::string group;
  uint64_t epoch = 0;
  int rank = 0;
  int size = 1;
  std::string describe() const;  // "group 'ep' epoch 3 rank 1 of 4"
};

// A pending send or receive. Completed by the transport's progress thread.
class Request {
 public:
  virtual ~Request() = default;
  // True once the request has finished, successfully or not. Never blocks.
  virtual bool test() const = 0;
  // Blocks until the request finishes or `deadline` passes. Throws eccl::Error: the request's
  // own error, or kTimeout (the request is cancelled first) naming the operation and peer.
  virtual void wait(Deadline deadline) = 0;
  // Finishes a pending request with kAborted. A receive no longer writes into its buffer once
  // cancel() returns, nor (sockets, verbs) does a send read from its buffer. The message a cancelled
  // receive would have matched is dropped (sockets, verbs between ranks) or goes to the next
  // receive with that tag (libfabric; verbs to oneself): after a cancel, use fresh tags. See
  // each transport's header for sends.
  virtual void cancel() = 0;
  // The error the request finished with, if any (after test() is true).
  virtual std::optional<std::string> error() const = 0;
};
using RequestPtr = std::shared_ptr<Request>;

// Where a region's bytes live. Only host memory is supported today; the kind travels with every
// region so a device-memory path (GPU buffers, dmabuf) can be added without changing callers.
enum class MemoryKind : uint8_t { kHost = 0, kDevice = 1 };

// A range registered with one transport (NCCL's mhandle): pinned and mapped for RDMA transports,
// bookkeeping only for sockets. Returned by registerMemory and valid until deregisterMemory or
// the transport's destruction. Passing it with a buffer inside it spares the transport a
// per-operation registration; a buffer outside every region still works.
struct MemoryRegion {
  void* ptr = nullptr;
  size_t bytes = 0;
  MemoryKind kind = MemoryKind::kHost;
  uint64_t id = 0;  // the transport's handle; 0 = not registered
  bool contains(const void* p, size_t n) const {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(ptr);
    return a >= b && n <= bytes && a - b <= bytes - n;
  }
};

// A region as a peer sees it: exportRegion's small blob (transport kind, owner rank, address,
// bytes, key), sent to peers by any means (e.g. allGatherObj) and read with iread.
using RegionBlob = std::vector<uint8_t>;

class Transport {
 public:
  virtual ~Transport() = default;

  virtual const GroupIdentity& identity() const = 0;
  // The opaque address peers connect to; publish it before connect().
  virtual AddressBlob address() const = 0;
  // Connects to every other rank; addresses[r] is rank r's address(). Collective: every rank of
  // the group must call it. Throws Error naming the peer (rank and address) on failure/timeout,
  // and kAborted when `giveUp`, asked now and then (about every second) while peers are awaited,
  // gives a reason.
  virtual void connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) = 0;
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline) { connect(addresses, deadline, {}); }

  // Sends `bytes` from `data` to `peer` with `tag`. Messages with equal (peer, tag) match the
  // receives for them in posting order; the receive's size must equal the send's. `data` must
  // stay valid until the request finishes; a finished send means the buffer may be reused, not
  // that the peer has it (a transport may finish it once its bytes are copied out, as small
  // messages are). peer == own rank is allowed (local copy). `region`,
  // if not null, is a registration of this transport that contains [data, data + bytes).
  virtual RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) = 0;
  virtual RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) = 0;
  RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes) { return isend(peer, tag, data, bytes, nullptr); }
  RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes) { return irecv(peer, tag, data, bytes, nullptr); }
  // isend, and the same bytes copied to `copyTo`: a collective's own block, sent and kept (NCCL's
  // copy-send). A transport that copies the message anyway may do both in one pass (shared memory
  // does); by default it is isend, then memcpy. `copyTo` (`bytes` long, not overlapping `data`)
  // is the caller's, like `data`, and must stay valid and untouched until the request finishes:
  // a progress thread may write it until then. It holds the bytes once the request has finished
  // without error; after a failure, cancel or timeout its contents are unspecified, but nothing
  // writes it once the request has finished or cancel()/wait() has returned. `region` describes
  // `data` only. Any thread, as isend. Throws what isend throws, and Error(kInvalidArgument) for a
  // null `copyTo` with bytes or one that overlaps `data`.
  virtual RequestPtr isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo, const MemoryRegion* region);
  RequestPtr isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo) {
    return isendAndCopy(peer, tag, data, bytes, copyTo, nullptr);
  }

  // Registers [ptr, ptr + bytes) for sends, receives and remote reads. Throws Error naming the
  // range and the reason (e.g. the memory-lock limit). Thread-safe.
  virtual MemoryRegion registerMemory(void* ptr, size_t bytes, MemoryKind kind) = 0;
  MemoryRegion registerMemory(void* ptr, size_t bytes) { return registerMemory(ptr, bytes, MemoryKind::kHost); }
  // Ends a registration. Reads of it that peers start afterwards fail with an error naming the
  // region; replies already under way finish from a private copy (sockets) or complete first.
  virtual void deregisterMemory(const MemoryRegion& region) = 0;
  // The blob a peer needs to read this region with iread.
  virtual RegionBlob exportRegion(const MemoryRegion& region) const = 0;
  // One-sided read (receiver pull): copies `bytes` at `offset` of `peer`'s exported region into
  // `dst`. The owner posts nothing. Fails with kInvalidArgument when the range is outside the
  // region or the blob is not this transport's or not `peer`'s, and with kRemote when the owner
  // has deregistered it.
  virtual RequestPtr iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                           const MemoryRegion* local) = 0;

  // Fails every pending and later request on this rank, and asks every peer to do the same
  // (their requests fail with an error naming this rank and `reason`). Idempotent.
  virtual void abort(const std::string& reason) = 0;
  // Why the transport broke (a peer died, an abort), or nullopt while it is healthy.
  virtual std::optional<std::string> asyncError() const = 0;
  // The code the broken transport's requests fail with (kConnectionClosed for a lost peer,
  // kAborted for an abort, ...), or nullopt while it is healthy. Once set, neither changes.
  virtual std::optional<ErrorCode> asyncErrorCode() const = 0;
  virtual std::string peerAddress(int peer) const = 0;

  // Tells `listener`, once, that this transport broke (a lost or aborting peer, abort(), a
  // protocol error), with the code and reason its requests fail with — for a transport built
  // from several (transport/routed/) that must then fail the others too. It runs on whichever
  // thread saw the break, under the transport's lock: it must only hand the news on, never call
  // back into this transport. Set it before connect().
  using BreakListener = std::function<void(ErrorCode code, const std::string& reason)>;
  void onBreak(BreakListener listener) { breakListener_ = std::move(listener); }

 protected:
  void notifyBroken(ErrorCode code, const std::string& reason) const {
    if (breakListener_) breakListener_(code, reason);
  }

 private:
  BreakListener breakListener_;
};

}  // namespace eccl::transport
