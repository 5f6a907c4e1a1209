// The socket (TCP) transport: non-blocking sockets, one epoll progress thread per transport (and
// waiting threads that poll the sockets themselves, see CallerProgress), `nsocks` connections per
// peer with large messages striped over them. Every byte of a message goes straight from the
// socket into the receive's buffer when the receive is posted first. Large messages always do:
// they wait for the receiver's go-ahead (rendezvous), costing nothing when the receive is
// already posted and one round trip when it is not. Small messages that arrive first are staged
// within a memory budget (beyond it, that socket pauses until a receive is posted).
// TCP_NODELAY; IPv4 and IPv6.
//
// A peer whose connection breaks, or an abort (local or from a peer), fails every pending and
// later request with an error naming the rank and its address.
#pragma once

#include <memory>
#include <string>

#include "transport/transport.h"

namespace eccl::transport {

struct SocketOptions {
  // Address to listen on and publish (the interface peers reach this rank by). Required.
  std::string host;
  int nsocks = -1;                         // connections per peer; -1 = $ECCL_SOCKET_NSOCKS or 2
  size_t stripeMinBytes = 256 * 1024;      // messages at least this large are split over the sockets
  size_t unexpectedBudget = size_t(256) << 20;  // bytes staged for receives not posted yet
  // Messages (and receives) at least this large use rendezvous; -1 = $ECCL_SOCKET_RENDEZVOUS_BYTES
  // or 64 KiB. Smaller ones are sent eagerly.
  long long rendezvousBytes = -1;
  // SO_SNDBUF and SO_RCVBUF of every connection, bytes (the kernel doubles them, and caps them at
  // net.core.wmem_max/rmem_max), 64 KiB to 1 GiB; 0 = the kernel's autotuned buffers; -1 =
  // $ECCL_SOCKET_BUFFER_BYTES, or if unset 1 MiB for connections inside this host and autotuning
  // between hosts (measured on loopback only, 2-core VM, A/B: 1 MiB took 2-rank all_gather from
  // 2.98 to 3.72 GB/s and 8-rank from 0.77 to 0.91 over autotuning; 2 and 4 MiB did less, more
  // bytes in flight than the caches hold; a long fat link may want more than a fixed 1 MiB).
  long long bufferBytes = -1;
};

std::unique_ptr<Transport> createSocketTransport(GroupIdentity identity, SocketOptions options);

}  // namespace eccl::transport
