// A TCP connection per peer beside a transport whose data path cannot tell that a peer died
// (libfabric RDM endpoints, RC queue pairs): it carries the identity handshake (group, epoch,
// rank: the socket connector's hello), the abort relay, a goodbye on clean teardown, and
// liveness — a crashed peer's kernel closes the connection, which shows within milliseconds.
// The heartbeat monitor (transport/liveness/) uses one of its own for pings and suspicions.
//
// Frames: u32 type (1 = bye, 2 = abort, 3 = ping, 4 = suspect), u32 length, then `length`
// bytes: the abort reason; for a suspicion the accused rank (u32) and the evidence.
// Not thread-safe: the owner calls it under its own lock (or from one thread).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/deadline.h"
#include "base/give_up.h"
#include "transport/socket/address.h"
#include "transport/socket/fd.h"
#include "transport/transport.h"

namespace eccl::transport {

class SideChannel {
 public:
  struct Event {
    // said goodbye and hung up / sent an abort / vanished / reports that `accused` failed
    enum Kind { kLeft, kAborted, kLost, kSuspects } kind;
    int peer = -1;
    std::string reason;  // kAborted: the peer's reason; kLost: what the socket said; kSuspects: evidence
    int accused = -1;    // kSuspects only
  };
  // How the transport breaks on an abort or a lost peer (`peerName` names e.peer): the code and
  // reason its requests fail with, and whether to relay it to the other peers. Both are relayed
  // (as ULFM floods a revoke): a rank that hears of a lost peer from us still learns which rank
  // was lost, and one that has not yet heard an aborting rank (it may be slow, or die halfway
  // through telling everyone) learns of the abort from us before our own hang-up, not our
  // hang-up as a crash. Nullopt for a goodbye.
  struct Break {
    ErrorCode code;
    std::string reason;
    bool relay;
  };
  static std::optional<Break> breakFor(const Event& e, const GroupIdentity& id, const std::string& peerName);

  // Listens on `host` (port chosen by the kernel).
  SideChannel(GroupIdentity id, const std::string& host);
  std::string address() const { return listenAddr_.str(); }
  // Connects to every other rank (addresses[r] is rank r's address()); throws Error naming the
  // peer on refusal (other group or epoch), timeout, or when `giveUp` gives a reason.
  void connect(const std::vector<std::string>& addresses, Deadline deadline, const GiveUpCheck& giveUp = {});
  // Reads what has arrived, without blocking.
  std::vector<Event> poll();
  // For a transport handling a data-path error, where acting on events is not safe: reads what
  // arrived and keeps it for takeEvents(), and returns the first lost or aborting peer among the
  // kept events (`peerName` names it) as the reason the failed operation should give — an error
  // while a peer is gone is most likely that loss — or nullopt.
  std::optional<std::string> peekLoss(const std::function<std::string(int)>& peerName);
  // The events peekLoss kept, then what has arrived since.
  std::vector<Event> takeEvents();
  bool holdsEvents() const { return !held_.empty(); }
  // An fd that is readable when poll() has something to read (epoll over the connections).
  int waitFd() const { return epoll_.get(); }
  // Best effort, without blocking: a peer whose socket is full or gone misses it.
  void sendAbort(const std::string& reason);
  void sendBye();
  void sendPing();
  void sendSuspect(int accused, const std::string& evidence);
  // Closes the connection to `peer` (a failed one: nothing more is sent to it or read from it).
  void disconnect(int peer);
  // When bytes last came from `peer` (connect time if none yet).
  Clock::time_point lastHeard(int peer) const { return peers_[peer].lastHeard; }

 private:
  struct PeerLink {
    Fd fd;
    std::vector<uint8_t> in;
    bool byeSeen = false;
    Clock::time_point lastHeard{};
  };
  void sendFrame(uint32_t type, const std::string& payload);
  void readFrom(int peer, std::vector<Event>& out);

  GroupIdentity id_;
  Fd listener_, epoll_;
  SocketAddress listenAddr_;
  std::vector<PeerLink> peers_;
  std::vector<Event> held_;  // read by peekLoss, not yet taken
};

}  // namespace eccl::transport
