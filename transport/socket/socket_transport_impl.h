// The socket transport's internals, shared by its two source files: socket_transport.cc
// (lifecycle, sending, abort, the progress loop) and socket_receive.cc (reading chunks, routing
// them to receives or staging, matching, cancelling receives). Not installed API.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "transport/caller_progress.h"
#include "transport/request_state.h"
#include "transport/tag_matcher.h"
#include "transport/socket/address.h"
#include "transport/socket/fd.h"
#include "transport/socket/socket_transport.h"
#include "transport/socket/socket_wire.h"

namespace eccl::transport::sockets {

using Key = MessageKey;
inline constexpr size_t kReadBudgetPerEvent = 8u << 20;  // then let other sockets have a turn
inline constexpr size_t kScratchBytes = 64 * 1024;
inline constexpr size_t kMaxChunkBytes = size_t(1) << 30;
inline constexpr size_t kInBufferBytes = 16 * 1024;
inline constexpr uint64_t kWakeId = ~uint64_t(0);

struct SendOp {
  std::shared_ptr<RequestState> req;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  std::vector<uint8_t> owned;  // a cancelled or aborted send finishes from this copy
  int chunksLeft = 0;
};

struct OutChunk {
  std::shared_ptr<SendOp> op;  // null for an abort chunk
  uint8_t header[wire::kChunkHeaderBytes];
  size_t offset = 0;  // of the payload within the message
  uint32_t len = 0;
  std::vector<uint8_t> control;  // abort reason
  size_t sent = 0;               // of header + payload
  const uint8_t* payload() const { return op ? op->data + offset : control.data(); }
};

struct RecvOp {
  std::shared_ptr<RequestState> req;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t received = 0;
  Key key;
  bool granted = false;  // we sent the peer a CTS for it
};

using Matcher = TagMatcher<std::shared_ptr<RecvOp>>;

struct Conn {
  Fd fd;
  int peer = -1;
  uint64_t id = 0;
  uint32_t events = 0;
  std::deque<OutChunk> sendq;
  // Receive side: header, then `left` payload bytes into dest (or into scratch when discarding).
  // Headers and small payloads are read through `in` (bytes [inStart, inEnd)), so one recv
  // brings a small message whole, or many; large payloads go straight into their buffer.
  std::vector<uint8_t> in = std::vector<uint8_t>(kInBufferBytes);
  size_t inStart = 0, inEnd = 0;
  wire::ChunkHeader h;
  bool inPayload = false;
  bool paused = false;  // header read, nowhere to put the payload yet
  bool dead = false;    // the peer closed or broke this connection
  bool byeSeen = false; // the peer said goodbye on this connection: its hang-up is clean
  uint8_t* dest = nullptr;
  size_t left = 0;
  enum class Sink { kRecv, kStaged, kDiscard, kAbortReason, kReadRefusal } sink = Sink::kDiscard;
  std::shared_ptr<RecvOp> target;
  std::vector<uint8_t> reason;
};

struct Peer {
  std::string address;
  std::vector<Conn*> conns;
  std::map<Key, uint64_t> discarding;  // cancelled receives: bytes still expected
  uint64_t roundRobin = 0;
  bool departed = false;  // said goodbye: its hang-up ends only the operations that involve it
  // Sends to oneself wait here for their receive.
  std::map<Key, std::shared_ptr<SendOp>> selfSends;
  // Rendezvous, sending side: large sends announced (RTS) and waiting for the peer's CTS; CTS
  // that came before their send was posted.
  std::map<Key, std::shared_ptr<SendOp>> awaitingCts;
  std::set<Key> clearToSend;
  // Rendezvous, receiving side: RTS for which no receive is posted yet (key → message bytes).
  std::map<Key, uint64_t> announced;
  // One-sided reads of this peer's regions, by read id: the replies land in their buffers.
  std::map<uint64_t, std::shared_ptr<RecvOp>> reads;
};

// A registration, and the read replies being sent from it (finished from a private copy if the
// region is deregistered while they are under way).
struct Registration {
  uint8_t* ptr = nullptr;
  size_t bytes = 0;
  std::vector<std::weak_ptr<SendOp>> replies;
};

class SocketTransport final : public Transport {
 public:
  SocketTransport(GroupIdentity id, SocketOptions opts);
  ~SocketTransport() override;

  const GroupIdentity& identity() const override { return id_; }
  AddressBlob address() const override {
    std::string a = listenAddr_.str();
    return AddressBlob(a.begin(), a.end());
  }
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
  std::string peerAddress(int peer) const override {
    return peer >= 0 && peer < id_.size ? peers_[peer].address : std::string("?");
  }

 private:
  std::string peerName(int peer) const { return "rank " + std::to_string(peer) + " (" + peerAddress(peer) + ")"; }
  void updateNames();
  bool admit(RequestState& req, int peer);
  void matchSelf(SendOp& s, RecvOp& r);
  void queueData(int peer, const std::shared_ptr<SendOp>& op, Key key, bool granted, uint16_t type = wire::kData);
  void queueControl(int peer, uint16_t type, Key key, uint64_t total);
  Conn* leastLoadedConn(int peer);  // null when every connection to the peer has ended
  void grant(int peer, RecvOp& op);
  void onReadyToSend(int peer, Key key, uint64_t total);
  void onClearToSend(int peer, Key key);
  void onReadRequest(int peer, uint64_t readId, uint64_t key, uint64_t offset, uint64_t bytes);
  void refuseRead(int peer, uint64_t readId, const std::string& why);
  void cancelRead(int peer, uint64_t readId, const std::shared_ptr<RecvOp>& op);
  void progressLoop();
  bool pollOnce();
  bool handleEvents(const epoll_event* events, int n);
  void readArrived();
  void onEvent(Conn& c, uint32_t events);
  void readFrom(Conn& c);
  bool receive(Conn& c, size_t& budget, bool& drained);
  bool route(Conn& c);
  void chunkDone(Conn& c);
  void flush(Conn& c);
  void setEvents(Conn& c);
  void resumePaused(int peer);
  void matchUnexpected(int peer, const std::shared_ptr<RecvOp>& op);
  void cancelSend(const std::shared_ptr<SendOp>& op);
  void cancelRecv(int peer, const std::shared_ptr<RecvOp>& op);
  void breakLocked(ErrorCode code, const std::string& reason, bool tellPeers);
  void peerLeft(int peer);
  void connectionLost(Conn& c, const std::string& why);

  GroupIdentity id_;
  SocketOptions opts_;
  int nsocks_;
  size_t rendezvousBytes_;
  int bufferBytes_;         // SO_SNDBUF/SO_RCVBUF of connections; 0 = the kernel's
  bool bufferEverywhere_;   // also between hosts (set by the user; the default is for this host's)
  Fd listener_, epoll_, wake_;
  SocketAddress listenAddr_;
  mutable std::mutex mu_;
  std::vector<Peer> peers_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::optional<std::string> broken_;
  ErrorCode brokenCode_ = ErrorCode::kAborted;
  Matcher matcher_;  // posted receives, unexpected messages and their budget
  std::map<uint64_t, Registration> regions_;  // by key
  uint64_t nextRegionKey_ = 1;
  uint64_t nextReadId_ = 1;
  std::vector<uint8_t> scratch_ = std::vector<uint8_t>(kScratchBytes);
  std::shared_ptr<CallerProgress> progress_;
  std::shared_ptr<const RequestLabel::Names> names_;
  std::atomic<bool> stop_{false};
  bool connected_ = false;
  bool leaving_ = false;  // the destructor said goodbye: peers hanging up now are leaving too
  std::thread thread_;
};

}  // namespace eccl::transport::sockets
