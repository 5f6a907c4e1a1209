// The verbs transport's internals, shared by its source files: verbs_transport.cc (lifecycle,
// posting), verbs_receive.cc (receives, matching, peers' messages), verbs_progress.cc
// (completions, side channel, device events, failures, cancel),
// verbs_memory.cc (registration, export, reads) and verbs_connector.cc (queue pairs).
// Not installed API.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "transport/argument_checks.h"
#include "transport/caller_progress.h"
#include "transport/ibverbs/verbs_address.h"
#include "transport/ibverbs/verbs_device.h"
#include "transport/ibverbs/verbs_transport.h"
#include "transport/ibverbs/verbs_wire.h"
#include "transport/progress_wakeup.h"
#include "transport/region_guards.h"
#include "transport/remote_region.h"
#include "transport/request_state.h"
#include "transport/self_messages.h"
#include "transport/side_channel.h"
#include "transport/socket/fd.h"
#include "transport/tag_matcher.h"

namespace eccl::transport::verbs {

// What a work request's id says: its kind (top byte) and which buffer or operation (the rest).
enum class WrKind : uint8_t { kRecvBuffer = 1, kSendSlot, kCredit, kWrite, kRead, kReadGuard };

// Writes and reads go in pieces of at most kMaxChunk bytes, at most kDataInFlight pieces per
// peer posted at once, and a read checks its guard word again after every kReadWindow bytes: so
// a guard check is never more than a few pieces away from the data it vouches for (a region
// deregistered meanwhile still holds its key for a grace period: see verbs_memory.cc), and a
// cancel's answer never waits behind more than a few pieces.
inline constexpr size_t kMaxChunk = size_t(4) << 20;
inline constexpr uint32_t kDataInFlight = 4;
inline constexpr size_t kReadWindow = size_t(16) << 20;
inline uint64_t wrId(WrKind k, uint64_t v) { return uint64_t(k) << 56 | v; }
inline WrKind wrKind(uint64_t id) { return static_cast<WrKind>(id >> 56); }
inline uint64_t wrValue(uint64_t id) { return id & ((uint64_t(1) << 56) - 1); }

// A posted receive (in the matcher, or in rendezvous once its clear-to-send went out).
struct RecvOp {
  std::shared_ptr<RequestState> req;
  int peer = -1;
  MessageKey key;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  MrPtr mr;  // for a rendezvous: the region's registration or one made for this receive
  uint64_t id = 0, sendId = 0;
  enum State : uint8_t { kMatching, kCtsSent, kCancelling } state = kMatching;
};
using RecvPtr = std::shared_ptr<RecvOp>;

// A large send, from its announcement until its writes have completed.
struct SendOp {
  std::shared_ptr<RequestState> req;
  int peer = -1;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  MrPtr mr;
  uint64_t id = 0, recvId = 0;
  uint64_t remoteAddress = 0;  // the receive's buffer, from its clear-to-send
  uint32_t rkey = 0;
  bool writing = false;    // the clear-to-send came: writes are (being) posted
  bool finQueued = false;  // its "finished" is queued or sent
  bool stopped = false;    // cancelled (by either side) or failed: nothing more is posted
  bool cancelled = false;  // by its sender: the canceller finishes it
  int outstanding = 0;     // writes posted, not completed
  size_t posted = 0;       // bytes of writes posted so far
};

// A one-sided read: guard word, data, guard word (see RemoteRegion).
struct ReadOp {
  std::shared_ptr<RequestState> req;
  uint64_t id = 0;
  int peer = -1;
  RemoteRegion remote;
  size_t offset = 0, bytes = 0;
  uint8_t* dst = nullptr;
  MrPtr mr;
  size_t landing = 0;  // its word in the landing table, for the guard reads
  int stage = 0;       // even: a guard word; odd: a window of the data
  int outstanding = 0;
  size_t done = 0;     // data bytes read in earlier windows
  size_t window = 0;   // data bytes of the current window
  size_t posted = 0;   // bytes of this stage posted so far
  bool cancelled = false;  // the canceller finishes it
  std::optional<std::pair<ErrorCode, std::string>> error;
  bool guardStage() const { return stage % 2 == 0; }
  size_t stageBytes() const { return guardStage() ? sizeof(uint64_t) : window; }
};

// Something to post to a peer once there is room (send queue, send slot, credit), in order.
struct Outgoing {
  enum Kind : uint8_t { kMessage, kWrite, kRead } kind = kMessage;
  WireHeader header;
  std::vector<uint8_t> payload;
  uint64_t op = 0;  // kWrite: send id; kRead: read id
};

// An eager message held in its receive buffer: it arrived before its receive and the budget for
// unexpected messages is spent (the buffer goes back once a receive takes it: back-pressure).
struct HeldMessage {
  uint32_t buffer = 0;
  MessageKey key;
  size_t bytes = 0;
};

struct Peer {
  VerbsPtr<ibv_qp> qp;
  std::string address;  // its side channel, for error messages
  std::string hostId;
  uint64_t creditAddress = 0;
  uint32_t creditKey = 0;
  CreditLedger credits{1, 1, 0};  // (set by connect from both sides' limits)
  uint32_t sqOutstanding = 0;  // work requests on its send queue not completed
  uint32_t dataInFlight = 0;   // of them, pieces of writes and reads (see kDataInFlight)
  bool creditWriteInFlight = false;
  bool left = false;     // said goodbye and hung up
  bool errored = false;  // its queue pair was put into the error state by us
  std::deque<Outgoing> control;  // control messages, writes and reads, in order
  std::deque<Outgoing> eager;    // eager data that found no room when posted
  std::deque<HeldMessage> held;
  std::map<MessageKey, WireHeader> announced;  // rendezvous announcements before their receive
};

struct Registration {
  MemoryRegion region;
  MrPtr mr;
  uint64_t key = 0;  // serial << 32 | rkey: never equal for two registrations of one transport
  size_t guardSlot = 0;
};

inline constexpr size_t kLandingSlots = 4096;  // reads in flight at once (their guard words land here)

class VerbsTransport final : public Transport {
 public:
  VerbsTransport(GroupIdentity id, VerbsOptions opts);
  ~VerbsTransport() override;

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
  // "host:port over rxe0:1" once connected.
  std::string peerAddress(int peer) const override;

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  std::shared_ptr<RequestState> newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes);
  bool admit(RequestState& req, int peer, bool receive);
  // Set-up (verbs_transport.cc).
  void createQueues();
  // Memory (verbs_memory.cc).
  MrPtr registerRange(const void* ptr, size_t bytes, int access, const std::string& what);
  MrPtr mrFor(const MemoryRegion* region, const void* data, size_t bytes, const char* what);
  void releaseRetired(bool all);
  // Posting (verbs_transport.cc).
  void queueMessage(int peer, const WireHeader& header, const void* payload, size_t bytes);
  bool postMessage(int peer, WireHeader header, const void* payload, size_t bytes);
  bool postWrites(SendOp& op);
  bool postReads(ReadOp& op);
  bool drainQueues(int peer);
  bool returnCredits(int peer);
  bool postSend(int peer, ibv_send_wr& wr);
  void repostBuffer(uint32_t buffer);
  // Matching (verbs_transport.cc).
  void startRendezvous(const RecvPtr& r, const WireHeader& rts);
  void deliver(RecvOp& r, const uint8_t* data, size_t bytes);
  void deliverHeld();
  void setSelfCanceller(bool send, Tag tag, const std::shared_ptr<RequestState>& req);
  void stageRead(ReadOp& op);
  // Progress (verbs_progress.cc).
  bool pollOnce();
  bool pollLocked(bool sideChannel);
  void onCompletion(const ibv_wc& wc);
  void onWorkError(const ibv_wc& wc, int peer);
  bool onMessage(int peer, uint32_t buffer, size_t length);  // false: the buffer is held
  void onClearToSend(int peer, const WireHeader& h);
  void onCancel(int peer, const WireHeader& h);
  bool unqueueWrites(SendOp& op);
  void finishSend(uint64_t id, std::optional<std::pair<ErrorCode, std::string>> error);
  void finishRead(uint64_t id, std::optional<std::pair<ErrorCode, std::string>> error);
  void handleSideChannel();
  std::optional<std::string> lostPeerReason();
  void progressLoop();
  void cancelRecv(const std::weak_ptr<RecvOp>& weak);
  void cancelSend(uint64_t id);
  void cancelRead(uint64_t id);
  // Waits (polling, lock released between polls) until `done` or cancelTimeout; on timeout
  // puts `peer`'s queue pair into the error state and breaks the transport naming it.
  void awaitPeer(std::unique_lock<std::mutex>& lock, int peer, const std::function<bool()>& done, const std::string& what);
  void handleAsyncEvents();
  bool anyQueued() const;
  void toError(int peer);
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  void peerLeft(int peer);
  void failPeerOps(int peer, ErrorCode code, const std::string& why);  // -1: every peer
  bool pendingWork() const;
  int peerOfQp(uint32_t qpn) const;

  GroupIdentity id_;
  VerbsOptions opts_;
  mutable std::mutex mu_;
  std::unique_ptr<VerbsDevice> device_;
  VerbsPtr<ibv_comp_channel> channel_;
  VerbsPtr<ibv_cq> cq_;
  VerbsPtr<ibv_srq> srq_;
  // Registered tables: receive buffers, send slots, credits (peers write theirs), the credit
  // values this rank writes out, the guard table peers read, and guard-read landing words.
  size_t slotBytes_ = 0, recvBuffers_ = 0, sendSlots_ = 0;
  std::unique_ptr<uint8_t[]> recvMem_, sendMem_;
  std::unique_ptr<uint64_t[]> creditIn_, creditOut_, landing_;
  RegionGuards guards_;
  MrPtr recvMr_, sendMr_, creditInMr_, creditOutMr_, guardMr_, landingMr_;
  std::vector<uint32_t> freeSlots_, freeLanding_;
  std::vector<int> slotPeer_;
  uint32_t maxSendWr_ = 0;
  uint64_t creditLimit_ = 0;
  size_t maxChunk_ = 0;
  // Registrations by id; deregistered ones stay with the device a grace period (see header).
  std::map<uint64_t, Registration> regions_;
  std::deque<std::pair<Clock::time_point, MrPtr>> retired_;
  uint64_t nextRegionId_ = 1;
  uint32_t keyBase_ = 0;
  TagMatcher<RecvPtr> matcher_;
  std::map<uint64_t, RecvPtr> rendezvous_;  // receives whose clear-to-send went out, by id
  std::map<uint64_t, std::unique_ptr<SendOp>> sends_;
  std::map<uint64_t, std::unique_ptr<ReadOp>> reads_;
  uint64_t nextOpId_ = 1;
  SelfMessages selfMessages_;
  std::unique_ptr<SideChannel> side_;
  VerbsAddress self_;
  std::vector<Peer> peers_;  // (their queue pairs go before the queues and tables above)
  std::map<uint32_t, int> qpPeer_;
  std::optional<std::string> postError_;  // a failed post, acted on after the current pass
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  bool connected_ = false;
  uint64_t polls_ = 0;
  ProgressWakeup wakeup_;
  Fd epoll_;
  std::shared_ptr<CallerProgress> progress_;
  std::shared_ptr<const RequestLabel::Names> names_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Queue pairs (verbs_connector.cc).
VerbsPtr<ibv_qp> createQueuePair(const VerbsDevice& device, ibv_cq* cq, ibv_srq* srq, uint32_t maxSendWr);
// INIT→RTR→RTS against the peer's queue pair `remoteQpn` at `remote`; this side's packets start
// at `localPsn`, the peer's at remote.psn.
void connectQueuePair(ibv_qp* qp, const VerbsDevice& device, const VerbsAddress& remote, uint32_t remoteQpn,
                      uint32_t localPsn, const VerbsOptions& opts, const std::string& peerName);
// How many RDMA READs peers may have in flight against one of this rank's queue pairs.
uint8_t responderReadDepth(const VerbsDevice& device);
// Moves it to the error state: nothing more lands or leaves; posted work completes flushed.
void errorQueuePair(ibv_qp* qp);

}  // namespace eccl::transport::verbs
