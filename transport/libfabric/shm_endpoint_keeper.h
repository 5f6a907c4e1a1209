// Keeps this process's libfabric shared-memory endpoints open while a peer in the process may
// still touch their regions.
//
// libfabric's shm provider (1.17) hands an endpoint whose peer lives in the same process that
// peer's region by pointer rather than through a mapping of its own, and closing an endpoint
// unmaps its region. A peer in the process that still refers to it (it handles the closed one's
// connection request, or answers one of its messages, late) then reads unmapped memory and the
// process faults. Ranks as threads of one process (tests, one process driving several devices)
// hit this whenever one rank destroys its communicator while another still runs.
//
// Either side of a link touches the other's region: the sender of a first message hands its
// name to the receiver, whose progress then looks the sender up by that name and writes into its
// region (connection requests, replies), whether or not the receiver ever inserted the sender.
// So an endpoint linked to an open endpoint of this process is parked (kept open, never
// progressed again) and closed when the last open one it is linked to is released; and an
// endpoint already closed may not be referred to again (its name would lead libfabric to the
// unmapped region). Peers in other processes map regions themselves and are not tracked.
//
// Endpoints are named by their fi_getname bytes; what is kept open is opaque (the libfabric
// objects, destroyed by their owner's deleter). Thread-safe; objects are destroyed outside the
// lock, on the thread that released the last one referring to them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace eccl::transport::ofi {

class ShmEndpointKeeper {
 public:
  // The one keeper of this process (libfabric's sharing is process-wide). Never destroyed: a
  // parked endpoint outliving main is closed by nobody, as an endpoint never released would be.
  static ShmEndpointKeeper& process();

  // A new endpoint of this process, open.
  void opened(const std::string& name);
  // `from` (an open endpoint of this process) is about to refer to `to` (insert it into its
  // address vector): links the two. False if `to` was an endpoint of this process that is
  // closed now.
  [[nodiscard]] bool refer(const std::string& from, const std::string& to);
  // `name`'s owner is done with it; `objects` keep it open. Destroys them now unless `name` is
  // linked to an open endpoint (then they are parked), and destroys every parked endpoint whose
  // last open link `name` was. (Closing one never touches another's region.) Throws only
  // std::bad_alloc, after destroying `objects`.
  void release(const std::string& name, std::shared_ptr<void> objects);

  bool isParked(const std::string& name) const;
  size_t parkedCount() const;

 private:
  struct Entry {
    bool open = true;
    std::set<std::string> links;      // endpoints of this process linked to this one
    std::set<std::string> openLinks;  // those still open (they may touch this one's region)
    std::shared_ptr<void> parked;     // while released but linked to an open one
  };
  void close(std::map<std::string, Entry>::iterator it, std::vector<std::shared_ptr<void>>& out);

  mutable std::mutex mu_;
  std::map<std::string, Entry> live_;  // open or parked
  std::set<std::string> closed_;       // (a few bytes for each endpoint the process closed)
};

}  // namespace eccl::transport::ofi
