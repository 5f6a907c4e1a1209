// The transport seam: how bytes move between the ranks of one group. Shaped after NCCL's net
// plugin (listen/connect, register memory, tagged isend/irecv, test) and Gloo's pair/unbound
// buffer, so sockets, libfabric and verbs fit behind it without changing callers.
//
// One Transport object serves one group (one rank's view of it). Lifecycle:
//   t = createXTransport(identity, options);     // listens; address() is ready
//   publish t->address() (e.g. in the store); collect every rank's address
//   t->connect(addresses, deadline);             // every rank calls it
//   t->isend / t->irecv ...                      // any thread
//   destroy (destructor): always succeeds, also when peers are gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/deadline.h"

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
  // Finishes a pending request with kAborted. A receive no longer writes into its buffer and a
  // send no longer reads from its buffer once cancel() returns.
  virtual void cancel() = 0;
  // The error the request finished with, if any (after test() is true).
  virtual std::optional<std::string> error() const = 0;
};
using RequestPtr = std::shared_ptr<Request>;

// A registered memory range. Sockets need no registration; RDMA transports pin and map it.
struct MemoryRegion {
  void* ptr = nullptr;
  size_t bytes = 0;
  uint64_t key = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual const GroupIdentity& identity() const = 0;
  // The opaque address peers connect to; publish it before connect().
  virtual AddressBlob address() const = 0;
  // Connects to every other rank; addresses[r] is rank r's address(). Collective: every rank of
  // the group must call it. Throws Error naming the peer (rank and address) on failure/timeout.
  virtual void connect(const std::vector<AddressBlob>& addresses, Deadline deadline) = 0;

  // Sends `bytes` from `data` to `peer` with `tag`. Messages with equal (peer, tag) match the
  // receives for them in posting order; the receive's size must equal the send's. `data` must
  // stay valid until the request finishes. peer == own rank is allowed (local copy).
  virtual RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes) = 0;
  virtual RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes) = 0;

  virtual MemoryRegion registerMemory(void* ptr, size_t bytes) = 0;
  virtual void deregisterMemory(const MemoryRegion& region) = 0;

  // Fails every pending and later request on this rank, and asks every peer to do the same
  // (their requests fail with an error naming this rank and `reason`). Idempotent.
  virtual void abort(const std::string& reason) = 0;
  // Why the transport broke (a peer died, an abort), or nullopt while it is healthy.
  virtual std::optional<std::string> asyncError() const = 0;
  virtual std::string peerAddress(int peer) const = 0;
};

}  // namespace eccl::transport
