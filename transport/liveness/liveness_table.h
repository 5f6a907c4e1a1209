// Pure bookkeeping of which peers are alive, for the heartbeat monitor (no sockets, so it is
// unit-tested with a fake clock): when each peer was last heard from, which failed and on what
// evidence, and which left cleanly. A peer is judged silent only after the caller has read
// everything that arrived (so a monitor that was itself descheduled does not blame others).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/deadline.h"

namespace eccl::transport {

class LivenessTable {
 public:
  // `timeout` 0 = no silence check (only proven failures count).
  LivenessTable(int size, int self, Millis timeout, Clock::time_point now);

  void heard(int peer, Clock::time_point at);
  // The peer said goodbye: it is neither alive nor failed, and no longer checked.
  void left(int peer);
  // Records `peer` as failed with `evidence`; true when this is news (first evidence wins).
  bool fail(int peer, const std::string& evidence);
  // Peers neither failed nor gone that were last heard more than `timeout` before `now`.
  std::vector<int> silentPeers(Clock::time_point now) const;

  bool failed(int peer) const { return failures_.count(peer) != 0; }
  const std::map<int, std::string>& failures() const { return failures_; }

 private:
  int self_;
  Millis timeout_;
  std::vector<Clock::time_point> lastHeard_;
  std::vector<bool> gone_;
  std::map<int, std::string> failures_;
};

}  // namespace eccl::transport
