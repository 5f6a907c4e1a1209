// A stateless process group: a communicator built from (store, group name, epoch, rank, size)
// and nothing process-wide, so any number coexist in one process (same or overlapping ranks,
// different names or epochs), each destroyed and rebuilt independently.
//
// Building: every rank publishes its transport and heartbeat addresses under
// "<name>/<epoch>/addr/<rank>" in the store, reads everyone's, and connects the full mesh (the
// handshake checks name, epoch and ranks). Once connected a rank deletes its own key, so finished epochs leave nothing behind.
// A rank that never shows up makes the others fail at the deadline with an error naming it. A
// rank whose size differs from the first arrival's (or whose rank is outside its size) fails at
// once, and so do the ranks still waiting for the group — within about two seconds. A failed
// build leaves its keys behind: build again at a new epoch (or under a new name).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "comm/communicator.h"
#include "groups/store/store.h"
#include "transport/transport_factory.h"

namespace eccl {

struct GroupOptions {
  uint64_t epoch = 0;
  // Which transport and its settings (transport/transport_factory.h: $ECCL_TRANSPORT, ...).
  // transport.host, the address to listen on and publish: empty = $ECCL_SOCKET_IFNAME's address
  // if set, else the local address this process uses to reach the store (reachable by anyone
  // who reaches it).
  transport::TransportOptions transport;
  // comm.timeout bounds the build too (store lookups, connecting) and is the default timeout of
  // every operation; nullopt = $ECCL_TIMEOUT or 300 s.
  CommOptions comm;
  // Bounds the build alone when shorter than comm.timeout (recovery builds with a short one).
  std::optional<std::chrono::milliseconds> buildTimeout;
  // Failure detection beside the data path (transport/liveness/heartbeat_monitor.h): a failed
  // rank revokes the communicator on every survivor (Communicator::failedRanks names it).
  transport::HeartbeatOptions heartbeat;
};

class StatelessGroup {
 public:
  // `store` is shared (one connection can serve many groups). Throws Error naming the missing
  // rank(s) on timeout, or the refused peer.
  static std::unique_ptr<StatelessGroup> create(std::shared_ptr<Store> store, const std::string& name, int rank,
                                                int size, GroupOptions options = {});
  // Convenience: connects its own client to the store at "host:port".
  static std::unique_ptr<StatelessGroup> create(const std::string& storeAddress, const std::string& name, int rank,
                                                int size, GroupOptions options = {});
  ~StatelessGroup() { destroy(); }

  Communicator& comm() { return *comm_; }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }
  uint64_t epoch() const { return epoch_; }
  const std::string& name() const { return name_; }
  const std::shared_ptr<Store>& store() const { return store_; }
  // Idempotent; works when peers are gone.
  void destroy() { comm_->destroy(); }

 private:
  StatelessGroup(std::string name, uint64_t epoch, std::shared_ptr<Store> store, std::unique_ptr<Communicator> comm)
      : name_(std::move(name)), epoch_(epoch), store_(std::move(store)), comm_(std::move(comm)) {}
  std::string name_;
  uint64_t epoch_;
  std::shared_ptr<Store> store_;
  std::unique_ptr<Communicator> comm_;
};

// Tells every rank building epoch `epoch` of group `name` to give up (they fail within about
// two seconds with `why`, instead of waiting for ranks that will not come). Best effort: a store
// that cannot be reached is ignored (the builders then fail at their deadline).
void callOffGroupBuild(const std::shared_ptr<Store>& store, const std::string& name, uint64_t epoch, const std::string& why);

// The address a group should listen on (see GroupOptions::transport).
std::string defaultGroupHost(const Store& store);
// The address of the interface named by $ECCL_SOCKET_IFNAME, if it is set.
std::optional<std::string> configuredInterfaceAddress();

}  // namespace eccl
