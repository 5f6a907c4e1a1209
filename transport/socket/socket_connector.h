// Builds the full mesh of one group: `nsocks` TCP connections between every pair of ranks.
// Each rank connects to every lower rank and accepts from every higher one; every connection
// starts with a hello (group, epoch, ranks, stream) that the acceptor checks and answers. A
// connection from another group, an older epoch or the wrong rank is refused with a reply naming
// both sides, and the acceptor goes on waiting for the right one. All within `deadline`, the
// passive accept side included; `giveUp`, asked while waiting for peers (every 200 ms while a
// connection, a hello or a reply is awaited; between attempts when connecting), ends the wait
// early with kAborted (peers that will never come: the build was called off).
#pragma once

#include <string>
#include <vector>

#include "base/deadline.h"
#include "base/give_up.h"
#include "transport/socket/fd.h"
#include "transport/socket/socket_wire.h"
#include "transport/transport.h"

namespace eccl::transport {

struct ConnectedSocket {
  Fd fd;  // non-blocking, TCP_NODELAY
  int peer = -1;
  int stream = 0;
};

// addresses[r] = "host:port" of rank r's listener; an empty one = no connection with rank r (a
// transport that carries only some pairs). Throws Error naming the peer(s) and address(es)
// on refusal or timeout.
// Why an accepted connection's hello does not belong to this rank's group (other group, epoch,
// size, target rank, an impossible sender, socket count), or "". Pure.
std::string helloMismatch(const GroupIdentity& id, int nsocks, const wire::Hello& h);
std::string describeHello(const wire::Hello& h);

std::vector<ConnectedSocket> establishConnections(const GroupIdentity& id, const std::vector<std::string>& addresses,
                                                  int nsocks, int listenFd, Deadline deadline, const GiveUpCheck& giveUp = {});

}  // namespace eccl::transport
