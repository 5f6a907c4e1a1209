// Chooses and builds a group's transport. One place for the transport options; everything not
// set here is read from the ECCL_* environment in exactly one spot (resolveTransportOptions).
//
//   ECCL_TRANSPORT      auto (default: shared memory between ranks of one host, sockets between
//                       hosts, chosen per pair) | socket | shm (one host only) | ofi | verbs
//   ECCL_SHM_RING_BYTES, ECCL_SHM_EAGER_BYTES   the shared-memory transport's ring and eager limit
//   ECCL_SHM_POOL_BYTES, ECCL_SHM_CHUNK_BYTES   its pool for large messages (0: none) and slot size
//   ECCL_OFI_PROVIDER   auto (default: shm between ranks of one host, tcp between hosts) | shm |
//                       tcp | any libfabric provider string (e.g. "verbs;ofi_rxm")
//   ECCL_IB_HCA         verbs: device[:port] (default: the first active port)
//   ECCL_IB_GID_INDEX   verbs: the GID to use (default: chosen, see verbs_transport.h)
//   ECCL_IB_TIMEOUT     verbs: ACK timeout exponent, 4.096 µs · 2^n (default 20, about 4 s)
//   ECCL_IB_RETRY_CNT   verbs: transport retries before a queue pair fails (default 7)
//   ECCL_IB_TC, ECCL_IB_SL   verbs: traffic class (RoCE) and service level (InfiniBand), default 0
//   ECCL_HOST_ID        overrides the host identity that decides who shares memory (tests)
#pragma once

#include <memory>
#include <string>

#include "transport/ibverbs/verbs_transport.h"
#include "transport/libfabric/ofi_transport.h"
#include "transport/shm/shm_transport.h"
#include "transport/socket/socket_transport.h"
#include "transport/transport.h"

namespace eccl::transport {

struct TransportOptions {
  std::string kind;   // "auto" | "socket" | "shm" | "ofi" | "verbs"; empty = $ECCL_TRANSPORT or "auto"
  std::string host;   // address to listen on and publish; required
  SocketOptions socket;  // socket.host is ignored: `host` is the one address
  OfiOptions ofi;        // ofi.host is ignored likewise
  VerbsOptions verbs;    // verbs.host likewise; hca/gidIndex/ibTimeout/retryCount/trafficClass/serviceLevel unset = $ECCL_IB_*
  ShmOptions shm;        // shm.host likewise; ringBytes/eagerBytes/chunkBytes 0, poolBytes unset = $ECCL_SHM_*
};

// Fills what the caller left empty from the environment. Throws Error(kInvalidArgument) naming
// the variable and the accepted values.
TransportOptions resolveTransportOptions(TransportOptions options);

// Builds the transport. "ofi" and "verbs" load their plugin next to this library; if it cannot
// be loaded (libfabric or libibverbs not installed, eccl built without it) the error says why —
// never a silent fall-back to sockets.
std::unique_ptr<Transport> createTransport(GroupIdentity identity, TransportOptions options);

}  // namespace eccl::transport
