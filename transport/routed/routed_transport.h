// ECCL_TRANSPORT=auto: every pair of ranks on the transport that suits it — shared memory
// between ranks of one host, sockets between hosts — as NCCL picks P2P/SHM/NET per pair.
//
// Each rank builds both and publishes both addresses with its host id; connect() routes a pair
// to shared memory when both ranks are on one host (equal host ids, see host_identity.h) and
// both offer it, else to sockets, and connects each transport to its own peers only.
// Registration registers with both; an exported region carries both blobs, and a read uses the
// one of the pair's transport. When either transport breaks (a lost peer, an abort), the other
// is aborted too with the reason, so no operation waits on a group that is already broken.
//
// Shared memory is left out (sockets only, said in the log) where it cannot work: no memfd, or
// a ptrace restriction (kernel.yama.ptrace_scope ≥ 1) that forbids cross-memory attach between
// sibling processes.
#pragma once

#include <memory>

#include "transport/shm/shm_transport.h"
#include "transport/socket/socket_transport.h"
#include "transport/transport.h"

namespace eccl::transport {

struct RoutedOptions {
  std::string host;  // address of both transports' listeners; required
  ShmOptions shm;    // shm.host is ignored: `host` is the one address
  SocketOptions socket;  // socket.host likewise
};

std::unique_ptr<Transport> createRoutedTransport(GroupIdentity identity, RoutedOptions options);

}  // namespace eccl::transport
