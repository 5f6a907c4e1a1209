// The OFI transport's internals, shared by its source files: ofi_transport.cc (lifecycle,
// posting, self messages), ofi_progress.cc (completions, side channel, failures, cancel) and
// ofi_memory.cc (registration, export, reads). Not installed API.
#pragma once

#include <rdma/fi_domain.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <functional>

#include "transport/caller_progress.h"
#include "transport/host_identity.h"
#include "transport/libfabric/ofi_address.h"
#include "transport/libfabric/ofi_endpoint.h"
#include "transport/libfabric/ofi_transport.h"
#include "transport/argument_checks.h"
#include "transport/progress_wakeup.h"
#include "transport/region_guards.h"
#include "transport/remote_region.h"
#include "transport/request_state.h"
#include "transport/self_messages.h"
#include "transport/side_channel.h"
#include "transport/socket/fd.h"

namespace eccl::transport::ofi {

struct Op;

// One posted libfabric operation; the provider hands `ctx` back in its completion.
struct Piece {
  fi_context2 ctx;  // first member: a completion's op_context is this Piece's address
  Op* op = nullptr;
  size_t bytes = 0;
};

// What posting an Op's pieces needs, kept by value: pieces may be posted later, from the backlog.
struct PostArgs {
  enum Verb : uint8_t { kSend, kInject, kRecv, kRead } verb = kSend;  // kInject: done once posted
  fid_ep* ep = nullptr;
  uint8_t* buf = nullptr;
  void* desc = nullptr;
  fi_addr_t addr = FI_ADDR_UNSPEC;
  uint64_t tag = 0;     // reads: the remote key
  uint64_t remote = 0;  // reads: the remote address (or offset) of byte 0
  ssize_t post(Piece& piece, size_t offset) const;
};

// A send, receive or read: one or more pieces (messages beyond the provider's limit), posted in
// order; pieces the provider has no room for yet wait in their peer's backlog.
struct Op {
  std::shared_ptr<RequestState> req;
  RequestLabel::Op kind = RequestLabel::Op::kSend;
  int peer = -1;
  Piece first;                              // the first piece of the current stage
  bool firstPosted = false;                 // (and not yet completed with its stage)
  std::vector<std::unique_ptr<Piece>> more;  // pieces after the first
  Op* prev = nullptr;  // in the transport's list of live operations
  Op* next = nullptr;
  int outstanding = 0;  // pieces posted and not completed
  size_t bytes = 0, pieceBytes = 0, pieceCount = 0, nextPiece = 0;
  PostArgs args;
  bool cancelled = false;  // the canceller's caller reports the failure (timeout or cancel)
  bool inBacklog = false;  // pieces still to post: not finished even when none is outstanding
  // Runs when every piece succeeded; may repost the Op for a next stage (returns true then).
  std::function<bool(Op&)> then;
  uint64_t guardWord = 0;   // a read's landing place for the owner's guard word
  FidPtr<fid_mr> guardMr;   // its registration, for providers that need FI_MR_LOCAL
  std::optional<std::pair<ErrorCode, std::string>> error;
  FidPtr<fid_mr> mr;  // per-operation registration, for providers that need FI_MR_LOCAL
};

// The live operations, intrusively linked (no allocation per operation beyond the Op); owns them.
class OpList {
 public:
  ~OpList() { clear(); }
  void add(std::unique_ptr<Op> op);
  void erase(Op* op);  // deletes it
  void clear();
  bool empty() const { return !head_; }
  Op* find(const RequestState* req) const;
  template <class F>
  void forEach(F&& f) const {
    for (Op* o = head_; o; o = o->next) f(*o);
  }

 private:
  Op* head_ = nullptr;
};

struct Registration {
  MemoryRegion region;
  uint64_t key = 0;
  size_t guardSlot = 0;             // its word in the guard table (see RemoteRegion)
  std::vector<FidPtr<fid_mr>> mrs;  // one per endpoint, same order as endpoints_
};


struct PeerInfo {
  int endpoint = -1;  // index into endpoints_
  fi_addr_t addr = FI_ADDR_UNSPEC;
  std::string address;  // its side channel, for error messages
  std::string hostId;
  bool left = false;    // said goodbye and hung up
  std::deque<Op*> backlog;  // operations with pieces not yet posted (provider queue full), in order
};

class OfiTransport final : public Transport {
 public:
  OfiTransport(GroupIdentity id, OfiOptions opts);
  ~OfiTransport() override;

  const GroupIdentity& identity() const override { return id_; }
  AddressBlob address() const override { return self_.encode(); }
  using Transport::connect;
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) override;
  RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) override;
  RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) override;
  MemoryRegion registerMemory(void* ptr, size_t bytes, MemoryKind kind) override;
  void deregisterMemory(const MemoryRegion& region) override;
  RegionBlob exportRegion(const MemoryRegion& region) const override;
  RequestPtr iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                   const MemoryRegion* local) override;
  void abort(const std::string& reason) override;
  std::optional<std::string> asyncError() const override {
    std::lock_guard lock(mu_);
    return broken_;
  }
  std::optional<ErrorCode> asyncErrorCode() const override {
    std::lock_guard lock(mu_);
    return broken_ ? std::optional<ErrorCode>(brokenCode_) : std::nullopt;
  }
  // "host:port over shm": the side channel, and (once connected) the provider that carries data.
  std::string peerAddress(int peer) const override;

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  int endpointFor(const OfiAddress& peer, int rank) const;
  std::shared_ptr<RequestState> newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes);
  bool admit(RequestState& req, int peer);
  // Posting (under mu_).
  std::unique_ptr<Op> newOp(const std::shared_ptr<RequestState>& req, RequestLabel::Op kind, int peer);
  void post(std::unique_ptr<Op> op, size_t bytes, const PostArgs& args);
  bool repost(Op& op, size_t bytes, const PostArgs& args);  // the next stage of an Op; false if it ended
  Registration registerRange(void* ptr, size_t bytes, MemoryKind kind, uint64_t key);
  PostArgs guardRead(Op& op, const RemoteRegion& r);
  bool postPieces(Op& op);  // false: the provider has no room now
  bool drainBacklogs();
  void* descriptor(Op& op, int endpoint, void* data, size_t bytes, const MemoryRegion* region, uint64_t access);
  void postSelf(bool send, Tag tag, const std::shared_ptr<RequestState>& req, uint8_t* data, size_t bytes);
  // Progress (ofi_progress.cc).
  bool pollOnce();
  bool pollLocked(bool sideChannel);
  bool drainCompletions(Endpoint& ep);
  void onCompletion(Piece& piece, size_t len, int err, const std::string& detail);
  void finish(Op& op);
  void handleSideChannel();
  std::optional<std::string> lostPeerReason();  // a peer lost or aborting, per the side channel
  void progressLoop();
  void withdraw(Op& op);  // fi_cancel of a receive's or read's pieces
  // Withdraws the request's operation and returns once the provider gave its buffers back.
  // `keepCompletion`: a completion that lands meanwhile finishes it as usual (else it counts as
  // cancelled, as Request::cancel promises).
  void cancelOp(const RequestState* req, bool keepCompletion = false);
  void settleDepartedReceive(const std::shared_ptr<RequestState>& req, int peer);
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  void peerLeft(int peer);
  // Fails every operation with peer `peer` (-1: all): receives and reads first give their
  // buffers back (bounded wait), then every request fails with `code` and "failed: why".
  void failOps(int peer, ErrorCode code, const std::string& why);
  bool pendingWork() const;  // an operation whose request has not finished

  GroupIdentity id_;
  OfiOptions opts_;
  std::string mode_;  // "auto" or one provider
  size_t maxPiece_ = 0;
  mutable std::mutex mu_;
  // Declared before the endpoints: destroyed after them, so the provider never holds a freed Piece.
  OpList ops_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Endpoint*> polled_;  // the endpoints some peer uses (after connect): the rest stay idle
  std::map<uint64_t, Registration> regions_;  // by id; closed before the endpoints' domains
  uint64_t nextRegionId_ = 1;
  uint64_t keyBase_ = 0;  // random per transport: a blob from an earlier group or epoch opens nothing here
  std::unique_ptr<RegionGuards> guards_;  // registered for remote reads like any region
  std::optional<Registration> guardRegion_;
  uint64_t nextReadId_ = 1;
  std::unique_ptr<SideChannel> side_;
  OfiAddress self_;
  std::vector<PeerInfo> peers_;
  SelfMessages selfMessages_;
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  bool connected_ = false;
  uint64_t polls_ = 0;
  ProgressWakeup wakeup_;
  std::shared_ptr<CallerProgress> progress_;
  std::shared_ptr<const RequestLabel::Names> names_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace eccl::transport::ofi
