// The shared-memory transport's internals, shared by its source files: shm_transport.cc
// (lifecycle, connecting, posting), shm_progress.cc (reading the rings, matching, copying,
// cancelling, failures, the progress thread) and shm_memory.cc (registration, export, reads).
// Not installed API.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "transport/caller_progress.h"
#include "transport/request_state.h"
#include "transport/shm/shm_address.h"
#include "transport/shm/shm_layout.h"
#include "transport/shm/shm_segment.h"
#include "transport/shm/shm_transport.h"
#include "transport/side_channel.h"
#include "transport/tag_matcher.h"

namespace eccl::transport::shm {

using Key = MessageKey;

class ShmTransport;

// Operations know their transport and peer, so a request's canceller needs nothing but the
// operation (RequestState::setCanceller(op, fn): no std::function to allocate). An operation and
// its request share one allocation (makeOperation); a canceller is only called on a request
// still pending, whose transport therefore still exists.
struct SendOp {
  RequestState* req = nullptr;  // in the same allocation (makeOperation)
  ShmTransport* owner = nullptr;
  int peer = -1;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  Key key;
  uint64_t id = 0;             // large sends: the id the receiver answers with
  std::vector<uint8_t> owned;  // a cancelled send not on the ring yet goes out from this copy
  bool pulled = false;         // the receiver asked for it through our pool
  size_t streamed = 0;         // pulled: bytes copied into the pool so far
  bool revoking = false;       // cancelled: no more chunks
  uint8_t* copyTo = nullptr;   // isendAndCopy: where [0, streamed) was copied too, with the chunks

  // isendAndCopy's copy of what did not go through the pool (the receiver took none or only
  // part of it): before the send completes without error.
  void copyRest() {
    if (copyTo && streamed < bytes) std::memcpy(copyTo + streamed, data + streamed, bytes - streamed);
    copyTo = nullptr;
  }
};

struct RecvOp {
  RequestState* req = nullptr;  // in the same allocation (makeOperation)
  ShmTransport* owner = nullptr;
  int peer = -1;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  Key key;
  uint64_t pullId = 0;  // pulled: the sender's send id (0 = not pulled)
};

using Matcher = TagMatcher<std::shared_ptr<RecvOp>>;

// Copies `bytes` at `remote` in process `pid` into `dst` (process_vm_readv). Empty on success,
// else why not.
std::string copyFromProcess(pid_t pid, uint64_t remote, uint8_t* dst, size_t bytes);

// A peer's large message whose receive is not posted yet.
struct Announcement {
  uint64_t bytes = 0;
  uint64_t address = 0;
  uint64_t sendId = 0;
};

// A record waiting for room in a peer's ring (kept in order).
struct Outgoing {
  RecordType type = kEager;
  std::shared_ptr<SendOp> op;  // kEager, kAnnounce, a message's last kChunk (each completes it once written)
  uint64_t sendId = 0;         // control and chunk records
  uint64_t offset = 0, length = 0, slot = 0;  // kChunk, kFreed (slot only)
  Key key;                                    // kGrant
};

// A large message of a peer's that we pull through its pool: where its chunks go.
struct Pulling {
  std::shared_ptr<RecvOp> op;  // null once the receive was cancelled (the chunks are dropped)
  uint64_t bytes = 0;
  uint64_t received = 0;
};

struct Peer {
  bool member = false;  // reached through this transport (see connect)
  std::string address;  // its side channel, for names
  pid_t pid = 0;
  SharedSegment segment;            // its segment, mapped: our ring to it, its doorbell, its registrations
  SegmentHeader* header = nullptr;  // in `segment`
  RingWriter out;                   // in its segment
  RingReader in;                    // in ours, written by it
  std::deque<Outgoing> backlog;     // records its ring had no room for yet
  std::map<uint64_t, std::shared_ptr<SendOp>> announced;  // our large sends it has not finished, by id
  std::map<Key, Announcement> waiting;  // its large messages whose receive is not posted yet
  std::set<Key> revoked;                // its messages it cancelled before we read them
  std::map<uint64_t, Pulling> pulling;  // its large messages we pull, by its send id
  std::set<Key> granted;                // our receives we told it to stream without asking (kGrant)
  std::set<Key> grants;                 // its receives posted before we sent the message
  const uint8_t* pool = nullptr;        // its chunk pool, in `segment` (null: it has none)
  size_t chunkBytes = 0;
  size_t poolSlots = 0;
  bool left = false;                    // said goodbye (what it wrote before is still received)
  bool wrote = false;                   // records written since its doorbell was last considered
};

struct Registration {
  MemoryRegion region;
  uint64_t key = 0;
  size_t slot = 0;
};

class ShmTransport final : public Transport {
 public:
  ShmTransport(GroupIdentity id, ShmOptions opts);
  ~ShmTransport() override;

  const GroupIdentity& identity() const override { return id_; }
  AddressBlob address() const override { return self_.encode(); }
  using Transport::connect;
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) override;
  RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) override {
    return send(peer, tag, data, bytes, region, nullptr);
  }
  using Transport::isendAndCopy;
  RequestPtr isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo, const MemoryRegion* region) override;
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
  std::string peerAddress(int peer) const override;

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  SegmentHeader* header() const { return reinterpret_cast<SegmentHeader*>(segment_.data()); }
  void updateNames();
  RequestLabel label(RequestLabel::Op kind, int peer, Tag tag, size_t bytes) const { return {names_, kind, bytes, peer, tag}; }
  std::shared_ptr<RequestState> newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes);
  bool admit(RequestState& req, int peer);
  bool departed(RequestState& req, int peer);
  void checkPeer(int peer, const std::string& what) const;
  // isend; `copyTo` (isendAndCopy, large messages only): copied to with the pool's chunks.
  RequestPtr send(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region, uint8_t* copyTo);
  void openPeer(int r, const ShmAddress& a);
  // Writing records (under mu_).
  bool write(int peer, const Outgoing& o);  // false: no room in its ring now
  bool writeMessage(int peer, RecordType type, const SendOp& s);
  bool emit(int peer, Outgoing o);          // writes (true), or queues behind what waits already
  bool drainBacklog(int peer);
  void ringDoorbells();
  // Receiving (shm_progress.cc, under mu_).
  bool pollOnce();
  bool pollLocked();
  // `recordBytes`: its size as the ring checked it. False: keep it (no room to hold it yet).
  bool dispatch(int peer, const uint8_t* record, size_t recordBytes);
  bool onEager(int peer, const MessageRecord& m, const uint8_t* payload);
  void onAnnounce(int peer, const MessageRecord& m);
  void onRevoke(int peer, uint64_t sendId);
  void finishSend(int peer, uint64_t sendId, bool revoked);
  void settleDeparted(int peer);
  void receiveAnnounced(int peer, const std::shared_ptr<RecvOp>& op, const Announcement& a, bool granted = false);
  void receiveUnexpected(int peer, const std::shared_ptr<RecvOp>& op);
  // Pulling through pools (shm_pool.cc, under mu_).
  void onPull(int peer, uint64_t sendId);
  void onGrant(int peer, Key key);
  void stream(const std::shared_ptr<SendOp>& op);
  void grant(int peer, const RecvOp& op);
  void onChunk(int peer, ChunkRecord c);  // (a copy: the ring is the peer's to scribble on)
  void onFreed(int peer, uint64_t slot);
  bool pumpStreams();
  void cancelPull(int peer, const RecvOp& op);
  void failPulls(int peer, ErrorCode code, const std::string& why);
  void releaseChunk(size_t slot);
  uint8_t* poolSlot(size_t slot) const { return segment_.data() + poolOffset(id_.size, opts_.ringBytes) + slot * opts_.chunkBytes; }
  bool sizesAgree(int peer, RecvOp& op, uint64_t sent);

 public:  // for the cancellers operations carry
  void cancelSend(int peer, const std::shared_ptr<SendOp>& op);
  void cancelRecv(int peer, const std::shared_ptr<RecvOp>& op);

 private:
  void handleSideChannel();
  void peerLeft(int peer);
  void failPeer(int peer, ErrorCode code, const std::string& why);
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  bool pendingWork() const;
  void progressLoop();
  void sideChannelLoop();
  void wakeProgress();

  GroupIdentity id_;
  ShmOptions opts_;
  SharedSegment segment_;
  ShmAddress self_;
  mutable std::mutex mu_;
  std::vector<Peer> peers_;
  Matcher matcher_;
  std::map<Key, std::shared_ptr<SendOp>> selfSends_;  // sends to ourselves waiting for their receive
  std::map<uint64_t, Registration> regions_;          // by id
  std::vector<size_t> freeSlots_;
  uint64_t keyBase_ = 0;  // random per transport: a blob from an earlier group or epoch opens nothing
  uint64_t nextRegionId_ = 1;
  uint64_t nextSendId_ = 1;
  uint64_t nextReadId_ = 1;
  // Our pool: free slots, the peer each used slot's chunk went to (-1: free), how many slots each
  // peer holds (at most chunkCap_, so a receiver that stops reading cannot starve the others),
  // and the pulled sends with bytes still to copy in (taken in turn, a chunk each).
  std::vector<size_t> freeChunks_;
  std::vector<int> chunkPeer_;
  std::vector<size_t> chunksHeld_;
  size_t chunkCap_ = 1;
  std::deque<std::shared_ptr<SendOp>> streams_;
  std::unique_ptr<SideChannel> side_;
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  bool connected_ = false;
  // For polls that find nothing without taking mu_: our rings from peers (set before ready_),
  // and the number of peers with a backlog.
  std::vector<const void*> inbound_;
  std::atomic<bool> ready_{false};
  std::atomic<int> backlogged_{0};
  std::shared_ptr<CallerProgress> progress_;
  std::shared_ptr<const RequestLabel::Names> names_;
  std::atomic<bool> stop_{false};
  Fd stopSide_;  // eventfd: wakes the side-channel thread to stop
  std::thread thread_, sideThread_;
};

}  // namespace eccl::transport::shm
