// The verbs transport: one reliable-connected (RC) queue pair per peer on an RDMA device
// (InfiniBand or RoCE; Soft-RoCE in tests), a side channel (TCP per peer) for the handshake,
// aborts, goodbyes and liveness — an RC queue pair notices a dead peer only after its retry
// timers run out.
//
//   small (≤ eagerBytes)  copied into a registered bounce buffer and SENT; the receiver takes it
//                         from a shared receive queue of pre-posted buffers and copies it into
//                         the receive's buffer, or holds it as unexpected within
//                         unexpectedBudget. Credits per peer (returned by a small RDMA WRITE or
//                         in the header of any message back) keep every send backed by a posted
//                         buffer: the receiver-not-ready path never fires.
//   large                 rendezvous: the sender announces the message; the receiver's
//                         clear-to-send carries its buffer's address and key; the sender
//                         RDMA-WRITEs it in chunks no larger than the port allows and then sends
//                         "finished" (RC delivers it after the writes).
//   reads (iread)         RDMA READ from a peer's exported region, the region's guard word read
//                         before and after every 16 MiB window of it (as the libfabric
//                         transport does), so a region deregistered meanwhile fails the read
//                         cleanly. A deregistered region stays registered with the device for a
//                         grace period, so a read already under way never meets a dead key
//                         (which would break the queue pair).
//   pieces                writes and reads go in pieces of at most 4 MiB (and the port's
//                         limit), at most 4 of them in flight per peer.
//
// Device and port: `hca` ("mlx5_0" or "mlx5_0:1"; empty = $ECCL_IB_HCA, else the first device
// with an active port). GID (RoCE): `gidIndex` (−1 = $ECCL_IB_GID_INDEX, else chosen: the
// RoCE v2 GID holding the side channel's IPv4 address, else the first RoCE v2 IPv4 one, else
// a routable RoCE v2 IPv6 one, else any RoCE v2 one, else index 0). InfiniBand ports use the LID.
// Both ranks of a pair must agree on eagerBytes (connect() refuses otherwise, naming the peer);
// credit limits and read depths are exchanged and each side honours the other's.
//
// Cancel: a receive not yet answered is withdrawn at once; one whose clear-to-send went out is
// cancelled with the sender (a two-sided exchange), so its buffer is free when cancel()
// returns. A rendezvous send waits for its writes. A peer that does not answer within the
// cancel timeout has its queue pair put into the error state and the transport breaks naming
// it. Small sends are copied out when posted (they finish at once).
//
// Built as a plugin (libeccl_transport_verbs.so) that createTransport loads on demand, so eccl
// runs where libibverbs is not installed and says so clearly when asked for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "transport/transport.h"

namespace eccl::transport {

struct VerbsOptions {
  static constexpr size_t kDefaultEagerBytes = 8 * 1024;
  std::string host;           // the side channel's address; required
  std::string hostId;         // empty = localHostId() (oversubscription check only)
  std::string hca;            // "device[:port]"; empty = $ECCL_IB_HCA or the first active port
  int gidIndex = -1;          // −1 = $ECCL_IB_GID_INDEX or chosen (see above)
  int ibTimeout = -1;         // ACK timeout exponent, 4.096 µs · 2^t; −1 = $ECCL_IB_TIMEOUT or 20
  int retryCount = -1;        // transport retries; −1 = $ECCL_IB_RETRY_CNT or 7
  int trafficClass = -1;      // RoCE/GRH traffic class (e.g. 106 for a lossless class); −1 = $ECCL_IB_TC or 0
  int serviceLevel = -1;      // InfiniBand service level; −1 = $ECCL_IB_SL or 0
  size_t eagerBytes = 0;      // 0 = kDefaultEagerBytes
  size_t maxMessageBytes = 0; // 0 = the port's limit; larger writes and reads go in pieces
  size_t unexpectedBudget = size_t(256) << 20;  // bytes held for receives not posted yet
  std::chrono::milliseconds cancelTimeout{10000};  // a peer's answer to a cancel
};

// The plugin's entry point (extern "C" so the loader can find it by name).
using CreateVerbsTransportFn = Transport* (*)(const GroupIdentity& identity, const VerbsOptions& options);
inline constexpr const char* kCreateVerbsTransportSymbol = "eccl_create_verbs_transport";

}  // namespace eccl::transport
