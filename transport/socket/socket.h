// Blocking-with-deadline TCP helpers shared by the store and the socket transport.
// All functions throw eccl::Error; messages name the address involved.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "base/deadline.h"
#include "base/give_up.h"
#include "transport/socket/address.h"
#include "transport/socket/fd.h"

namespace eccl {

// A listening TCP socket bound exactly to `addr` (port 0 picks a free port; IPv6 sockets are
// v6-only so "[::1]" never grabs IPv4 too). Non-blocking, close-on-exec.
Fd listenTcp(const SocketAddress& addr, int backlog = 1024);

// Connects to `addr`, retrying with jittered exponential backoff (10 ms .. 1 s) while the peer
// refuses or is unreachable, until `deadline`. The returned socket is non-blocking with
// TCP_NODELAY. Throws kConnectFailed naming the address and the last error, or kAborted when
// `giveUp` gives a reason (asked between attempts; an attempt then waits 1 s at most).
Fd connectTcp(const SocketAddress& addr, Deadline deadline, const GiveUpCheck& giveUp = {});

void setNonBlocking(int fd, bool on);
void setNoDelay(int fd);
// Sets SO_SNDBUF and SO_RCVBUF to `bytes` (which turns the kernel's autotuning of them off).
// Throws naming the option.
void setBufferBytes(int fd, int bytes);
// One connect of `fd` (non-blocking) to `addr`, waiting until `deadline`: 0 or the errno it
// failed with. A socket that met itself (below) counts as refused.
int connectAttempt(int fd, const SocketAddress& addr, Deadline deadline);
// A connected TCP socket whose two ends are one address: a connect to a local port nobody listens
// on met itself (TCP simultaneous open, when the kernel picked that very port as the source).
// Never throws; false when the addresses cannot be read.
bool isSelfConnected(int fd);
// Both ends of a connected socket have one IP address, so its bytes never leave this machine.
// Never throws; false when the addresses cannot be read.
bool staysOnThisMachine(int fd);

// Waits in poll until `fd` is ready for `events` (true) or `deadline` passes (false). With
// `giveUp`, asks it every 200 ms of waiting and throws kAborted "<what()>: <its reason>" when it
// gives one. Throws kSystem when poll fails.
bool waitReady(int fd, short events, Deadline deadline, const GiveUpCheck& giveUp = {},
               const std::function<std::string()>& what = {});

// Sends / receives exactly `len` bytes on a non-blocking socket, waiting with poll until
// `deadline`. `peer` is used in error messages. Throws kTimeout or kConnectionClosed, or
// kAborted when `giveUp` (asked as by waitReady while the peer is silent) gives a reason.
void sendAll(int fd, const void* data, size_t len, Deadline deadline, const std::string& peer);
void recvAll(int fd, void* data, size_t len, Deadline deadline, const std::string& peer, const GiveUpCheck& giveUp = {});

// Receives up to `len` bytes once and returns how many (> 0). It first busy-polls for up to
// `spin` (yielding the CPU between tries: a reply on loopback often arrives within microseconds
// and sleeping in poll costs a wake-up), then waits in poll until `deadline`.
// Throws kTimeout or kConnectionClosed naming `peer`.
size_t recvSome(int fd, void* data, size_t len, Deadline deadline, const std::string& peer,
                std::chrono::microseconds spin = std::chrono::microseconds(0));

}  // namespace eccl
