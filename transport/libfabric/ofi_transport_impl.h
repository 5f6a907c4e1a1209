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
#include <unordered_map>

#include "transport/caller_progress.h"
#include "transport/libfabric/ofi_address.h"
#include "transport/libfabric/ofi_endpoint.h"
#include "transport/libfabric/ofi_transport.h"
#include "transport/remote_region.h"
#include "transport/request_state.h"
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

using PostFn = std::function<ssize_t(Piece&, size_t offset)>;

// A send, receive or read: one or more pieces (messages beyond the provider's limit), posted in
// order; pieces the provider has no room for yet wait in their peer's backlog.
struct Op {
  std::shared_ptr<RequestState> req;
  RequestLabel::Op kind = RequestLabel::Op::kSend;
  int peer = -1;
  std::vector<std::unique_ptr<Piece>> pieces;
  uint64_t serial = 0;  // tells a live Op from a later one at the same address
  int outstanding = 0;  // pieces posted and not completed
  size_t bytes = 0, pieceBytes = 0, pieceCount = 0, nextPiece = 0;
  PostFn poster;        // posts one piece (captures everything by value: it may run later)
  bool cancelled = false;  // the canceller's caller reports the failure (timeout or cancel)
  // Runs when every piece succeeded; may repost the Op for a next stage (returns true then).
  std::function<bool(Op&)> then;
  uint64_t guardWord = 0;   // a read's landing place for the owner's guard word
  FidPtr<fid_mr> guardMr;   // its registration, for providers that need FI_MR_LOCAL
  std::optional<std::pair<ErrorCode, std::string>> error;
  FidPtr<fid_mr> mr;  // per-operation registration, for providers that need FI_MR_LOCAL
};

// A send or receive between this rank and itself, waiting for its partner.
struct SelfOp {
  std::shared_ptr<RequestState> req;
  uint8_t* data = nullptr;
  size_t bytes = 0;
};

struct Registration {
  MemoryRegion region;
  uint64_t key = 0;
  size_t guardSlot = 0;             // its word in the guard table (see RemoteRegion)
  std::vector<FidPtr<fid_mr>> mrs;  // one per endpoint, same order as endpoints_
};

// The words peers check around a read: slot i holds the key of the registration using it, 0
// when free. Registered for remote reads like any region.
inline constexpr size_t kGuardSlots = 4096;

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
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline) override;
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
  // "host:port over shm": the side channel, and (once connected) the provider that carries data.
  std::string peerAddress(int peer) const override;

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  void checkPeer(int peer, const char* op, size_t bytes) const;
  int endpointFor(const OfiAddress& peer, int rank) const;
  std::shared_ptr<RequestState> newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes);
  bool admit(RequestState& req, int peer);
  // Posting (under mu_).
  void post(std::unique_ptr<Op> op, size_t bytes, PostFn fn);
  bool repost(Op& op, size_t bytes, PostFn fn);  // the next stage of an Op; false if it ended
  Registration registerRange(void* ptr, size_t bytes, MemoryKind kind, uint64_t key);
  PostFn guardRead(Op& op, const RemoteRegion& r);
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
  void progressLoop();
  void withdraw(Op& op);  // fi_cancel of a receive's or read's pieces
  void cancelOp(Op* op, uint64_t serial);
  void wakeProgress();
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  void peerLeft(int peer);

  GroupIdentity id_;
  OfiOptions opts_;
  std::string mode_;  // "auto" or one provider
  size_t maxPiece_ = 0;
  mutable std::mutex mu_;
  // Declared before the endpoints: destroyed after them, so the provider never holds a freed Piece.
  std::unordered_map<Op*, std::unique_ptr<Op>> ops_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Endpoint*> polled_;  // the endpoints some peer uses (after connect): the rest stay idle
  std::map<uint64_t, Registration> regions_;  // by id; closed before the endpoints' domains
  uint64_t nextRegionId_ = 1;
  std::unique_ptr<uint64_t[]> guards_;
  std::optional<Registration> guardRegion_;
  std::vector<size_t> freeGuardSlots_;
  uint64_t nextReadId_ = 1;
  uint64_t nextSerial_ = 1;
  std::unique_ptr<SideChannel> side_;
  OfiAddress self_;
  std::vector<PeerInfo> peers_;
  std::map<Tag, std::deque<SelfOp>> selfSends_, selfRecvs_;
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  bool connected_ = false;
  uint64_t polls_ = 0;
  Fd wake_;
  std::atomic<bool> idleWait_{false};
  std::shared_ptr<CallerProgress> progress_;
  std::shared_ptr<const RequestLabel::Names> names_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace eccl::transport::ofi
