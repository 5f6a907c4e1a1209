// Failure detection for one group, apart from the data path: a TCP connection to every peer
// (a SideChannel of its own) and one thread that pings every peer each timeout/4 and watches
// what comes back.
//  - A crashed peer's kernel closes the connection: it is failed at once.
//  - A frozen or cut-off peer stops pinging: it is failed once silent for `timeout`.
//  - Whoever finds a failure tells every other peer (a suspicion), so all survivors blame the
//    same rank soon, also those that never wait on it — the rank that actually stopped, not the
//    neighbour a collective happened to be waiting for.
// A rank that hears it was itself declared failed stops spreading suspicions (its peers hanging up
// on it are the consequence, not news). A peer that destroys its group says goodbye and is not failed. Silence is judged only after
// everything that arrived has been read, so a monitor starved of CPU does not blame others.
// Cost: one mostly sleeping thread, N-1 idle sockets, N-1 8-byte pings per interval.
// Thread-safe; the listener runs on the monitor thread and must not block for long.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/deadline.h"
#include "base/give_up.h"
#include "transport/liveness/liveness_table.h"
#include "transport/side_channel.h"
#include "transport/socket/fd.h"

namespace eccl::transport {

struct HeartbeatOptions {
  // How long a peer may stay silent before it is declared failed; 0 = never (only closed
  // connections count). nullopt = $ECCL_HEARTBEAT_TIMEOUT (seconds, fractions allowed) or 5 s.
  std::optional<Millis> timeout;
};
// The timeout `options` asks for, with the environment's default; throws Error(kInvalidArgument)
// naming ECCL_HEARTBEAT_TIMEOUT for a malformed value or one below 100 ms (other than 0).
Millis resolveHeartbeatTimeout(const HeartbeatOptions& options);

class HeartbeatMonitor {
 public:
  using FailureListener = std::function<void(int rank, const std::string& evidence)>;

  // Listens on `host`; address() is ready at once.
  HeartbeatMonitor(GroupIdentity id, const std::string& host, Millis timeout);
  ~HeartbeatMonitor();  // says goodbye, stops the thread
  HeartbeatMonitor(const HeartbeatMonitor&) = delete;
  HeartbeatMonitor& operator=(const HeartbeatMonitor&) = delete;

  std::string address() const { return side_.address(); }
  // Connects to every peer's monitor (collective) and starts watching; `listener` hears of each
  // failed rank once. Throws Error naming the peer on refusal or timeout, or when `giveUp` gives
  // a reason.
  void connect(const std::vector<std::string>& addresses, Deadline deadline, FailureListener listener,
               const GiveUpCheck& giveUp = {});
  // Failed ranks and the evidence against each (first evidence wins).
  std::map<int, std::string> failures() const;

 private:
  void loop();
  Millis interval() const;

  GroupIdentity id_;
  Millis timeout_;
  SideChannel side_;
  Fd stop_;
  FailureListener listener_;
  mutable std::mutex mu_;
  std::unique_ptr<LivenessTable> table_;  // set by connect()
  bool accused_ = false;                  // a peer reported this rank failed: it stops accusing others
  std::thread thread_;
};

}  // namespace eccl::transport
