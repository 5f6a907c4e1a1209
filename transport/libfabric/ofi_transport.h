// The libfabric transport: tagged messages over FI_EP_RDM endpoints, one-sided reads by fi_read,
// and a side channel (one TCP connection per peer) for the handshake, aborts, goodbyes and
// liveness, since an RDM endpoint does not notice a dead peer by itself.
//
// Providers (`provider`, else $ECCL_OFI_PROVIDER, else "auto"):
//   "shm"   same host only, single copy through cross-memory attach; peers on another host are
//           an error naming them
//   "tcp"   "tcp;ofi_rxm", any network
//   "auto"  shm for peers on this host (by host id), tcp for the others
//   any other libfabric provider string with FI_EP_RDM + FI_TAGGED ("verbs;ofi_rxm", "efa")
// Both providers that run here need manual progress: a progress thread polls the completion
// queues, and waiting callers poll them themselves (CallerProgress), like the socket transport.
//
// Built as a plugin (libeccl_transport_ofi.so) that createTransport loads on demand, so eccl
// runs where libfabric is not installed and says so clearly when asked for it.
//
// Cancel: a receive or read is withdrawn (fi_cancel, then its completion is awaited) before
// cancel() returns. A send cannot be withdrawn from these providers once posted: cancel() waits
// briefly for it to finish and otherwise fails the request while the provider may still read
// the buffer until the peer receives it or the transport is destroyed.
//
// A peer that leaves cleanly: receives get what it sent before its goodbye, also receives posted
// after it (the message waits in the provider); one that nothing it sent matches fails, naming it.
//
// Size mismatches: a message shorter than its receive fails the receive, naming both sizes. A
// message longer than its receive is a program error the Debian 1.17 providers do not survive
// (shm spins inside fi_cq_read on a truncated large message; tcp;ofi_rxm stalls the connection
// after a truncated eager one), so it must not happen; the socket transport reports it cleanly.
#pragma once

#include <memory>
#include <string>

#include "transport/transport.h"

namespace eccl::transport {

struct OfiOptions {
  std::string provider;         // see above; empty = $ECCL_OFI_PROVIDER or "auto"
  std::string host;             // address for the side channel and network providers; required
  std::string hostId;           // empty = $ECCL_HOST_ID or this machine's boot id + host name
  size_t maxMessageBytes = 0;   // 0 = the provider's limit; larger messages go in pieces
};

// The plugin's entry point (extern "C" so the loader can find it by name).
using CreateOfiTransportFn = Transport* (*)(const GroupIdentity& identity, const OfiOptions& options);
inline constexpr const char* kCreateOfiTransportSymbol = "eccl_create_ofi_transport";

}  // namespace eccl::transport
