// The communicator of one group: P2P, batched P2P with HCCL BatchSendRecv semantics, and the
// collectives, each with an async form returning a Work and a blocking form that waits on it.
//
// Collectives run in call order on the communicator's own worker thread (like an NCCL stream);
// every rank must call them in the same order. A blocking collective called while the worker is
// idle runs on the calling thread instead (same order, same errors): handing it to the worker and
// back costs two thread wake-ups, more than a small collective itself. P2P operations go straight to the transport.
// Errors name the operation and what the transport saw (group, epoch, this rank, the peer rank
// and address, bytes). A timeout or a dead peer breaks the communicator: later operations fail
// at once, and abort() tells every rank to fail theirs. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "comm/registered_memory.h"
#include "comm/types.h"
#include "comm/work.h"
#include "transport/liveness/heartbeat_monitor.h"
#include "transport/transport.h"

namespace eccl {

namespace algo {
struct CollectiveContext;
}

// P2P tags: any value up to kMaxP2PTag (62 bits); the rest of the 64-bit transport tag space
// belongs to collectives and the *Obj helpers.
using P2PTag = uint64_t;
inline constexpr P2PTag kMaxP2PTag = (P2PTag(1) << 62) - 1;

struct P2POp {
  enum Kind { kSend, kRecv } kind;
  void* buf;     // read for kSend, written for kRecv; must stay valid until the Work finishes
  size_t bytes;
  int peer;
  P2PTag tag = 0;
  // A registration (RegisteredMemory::region()) holding [buf, buf + bytes), or null.
  const transport::MemoryRegion* region = nullptr;
};

struct CommOptions {
  std::optional<std::chrono::milliseconds> timeout;  // nullopt = $ECCL_TIMEOUT (seconds) or 300 s
  size_t smallMessageBytes = 32 * 1024;               // below: latency-optimal algorithms
};

class Communicator {
 public:
  // Takes a transport whose connect() has completed.
  explicit Communicator(std::unique_ptr<transport::Transport> t, CommOptions options = {});
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return id_.rank; }
  int size() const { return id_.size; }
  const transport::GroupIdentity& identity() const { return id_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // --- point to point; `tag` separates concurrent streams between the same pair; `region`, if
  // given, is a registration holding the buffer
  Work isend(const void* buf, size_t bytes, int peer, P2PTag tag = 0, const transport::MemoryRegion* region = nullptr);
  Work irecv(void* buf, size_t bytes, int peer, P2PTag tag = 0, const transport::MemoryRegion* region = nullptr);
  void send(const void* buf, size_t bytes, int peer, P2PTag tag = 0) { isend(buf, bytes, peer, tag).wait(); }
  void recv(void* buf, size_t bytes, int peer, P2PTag tag = 0) { irecv(buf, bytes, peer, tag).wait(); }
  // All operations start together and complete in whatever order the peers posted theirs (both
  // sides posting their sends first is fine); one Work for the whole batch. Equal (peer, tag)
  // pairs match in list order. An empty batch completes at once.
  Work batchIsendIrecv(const std::vector<P2POp>& ops);

  // --- registered memory and one-sided reads
  // Registers [ptr, ptr + bytes) with the transport (once; pinned for RDMA). Throws Error naming
  // the range and the reason. The handle deregisters when destroyed.
  RegisteredMemory registerMemory(void* ptr, size_t bytes, transport::MemoryKind kind = transport::MemoryKind::kHost);
  // Receiver pull: reads `bytes` at `offset` of `peer`'s region (its RegisteredMemory::exported()
  // blob) into `dst`; the owner takes no part. Fails (Work error) if the owner deregistered it.
  Work iread(int peer, const transport::RegionBlob& remote, size_t offset, void* dst, size_t bytes,
             const transport::MemoryRegion* local = nullptr);

  // --- collectives. Buffers must stay valid until the Work finishes.
  // recv has size()·bytes; in place when send == recv + rank()·bytes.
  Work allGatherAsync(const void* send, void* recv, size_t bytesPerRank);
  // recv holds rank r's block at Σ_{q<r} recvBytes[q]; sendBytes must equal recvBytes[rank()].
  Work allGatherVAsync(const void* send, size_t sendBytes, void* recv, const std::vector<size_t>& recvBytes);
  Work broadcastAsync(void* buf, size_t bytes, int root);
  // count elements; in place when send == recv.
  Work allReduceAsync(const void* send, void* recv, size_t count, DataType type, ReduceOp op);
  // send has size()·recvCount elements; rank r gets the reduction of block r.
  Work reduceScatterAsync(const void* send, void* recv, size_t recvCount, DataType type, ReduceOp op);
  // Byte counts and offsets per rank.
  Work allToAllVAsync(const void* send, const std::vector<size_t>& sendBytes, const std::vector<size_t>& sendOffsets,
                      void* recv, const std::vector<size_t>& recvBytes, const std::vector<size_t>& recvOffsets);
  Work barrierAsync();

  // Marks the calling thread as about to wait for the collective it submits (see the class
  // comment); the blocking forms below use it.
  class BlockingCall {
   public:
    BlockingCall();
    ~BlockingCall();
    BlockingCall(const BlockingCall&) = delete;
    BlockingCall& operator=(const BlockingCall&) = delete;

   private:
    bool previous_;
  };

  void allGather(const void* send, void* recv, size_t bytesPerRank) {
    BlockingCall b;
    allGatherAsync(send, recv, bytesPerRank).wait();
  }
  void allGatherV(const void* send, size_t sendBytes, void* recv, const std::vector<size_t>& recvBytes) {
    BlockingCall b;
    allGatherVAsync(send, sendBytes, recv, recvBytes).wait();
  }
  void broadcast(void* buf, size_t bytes, int root) {
    BlockingCall b;
    broadcastAsync(buf, bytes, root).wait();
  }
  void allReduce(const void* send, void* recv, size_t count, DataType type, ReduceOp op) {
    BlockingCall b;
    allReduceAsync(send, recv, count, type, op).wait();
  }
  void reduceScatter(const void* send, void* recv, size_t recvCount, DataType type, ReduceOp op) {
    BlockingCall b;
    reduceScatterAsync(send, recv, recvCount, type, op).wait();
  }
  void allToAllV(const void* send, const std::vector<size_t>& sendBytes, const std::vector<size_t>& sendOffsets, void* recv,
                 const std::vector<size_t>& recvBytes, const std::vector<size_t>& recvOffsets) {
    BlockingCall b;
    allToAllVAsync(send, sendBytes, sendOffsets, recv, recvBytes, recvOffsets).wait();
  }
  void barrier() {
    BlockingCall b;
    barrierAsync().wait();
  }

  // --- metadata on bytes (sizes travel first, so any length works; O(N) messages per rank)
  std::vector<std::vector<uint8_t>> allGatherObj(const std::vector<uint8_t>& mine);
  std::vector<uint8_t> broadcastObj(const std::vector<uint8_t>& obj, int root);
  void sendObj(const std::vector<uint8_t>& obj, int peer, P2PTag tag = 0);
  std::vector<uint8_t> recvObj(int peer, P2PTag tag = 0);

  // Fails every pending operation here and on every other rank of the group. Idempotent.
  void abort(const std::string& reason);

  // --- failures (as ULFM's MPI_Comm_revoke and NCCL's ncclCommRevoke)
  // Like abort(), and records `failed` as known failures: every pending and later operation
  // fails here and on every other rank, with an error naming the failed ranks known here. The
  // communicator stays queryable (failedRanks()) and destroyable; build the next epoch without
  // the failed ranks to go on (ElasticGroup::recover). Idempotent; thread-safe.
  void revoke(const std::string& reason, const std::vector<int>& failed = {});
  bool revoked() const;
  // Ranks known to have failed, ascending: seen by the heartbeat monitor (a closed connection, a
  // silence longer than the heartbeat timeout, another rank's report) or named to revoke().
  std::vector<int> failedRanks() const;
  // The same, with the evidence against each rank.
  std::map<int, std::string> failures() const;
  // Hands the communicator its group's heartbeat monitor (connected with a listener that calls
  // peerFailed); it is stopped first at destroy(). A failure it reports revokes the communicator.
  void attachMonitor(std::unique_ptr<transport::HeartbeatMonitor> monitor);
  void peerFailed(int rank, const std::string& evidence);
  // Frees every thread, socket and buffer; idempotent; works when peers are gone. Operations
  // still in flight are aborted (and so fail on the other ranks too).
  void destroy();
  std::optional<std::string> asyncError() const;
  // Its code (see Transport::asyncErrorCode); kConnectionClosed whenever ranks are known to have
  // failed (failedRanks() not empty), however the break arrived; kAborted once destroyed.
  std::optional<ErrorCode> asyncErrorCode() const;
  transport::Transport& transport() { return *transport_; }

 private:
  struct Task {
    std::shared_ptr<WorkState> state;
    std::function<void(const algo::CollectiveContext&)> body;
    transport::Tag tag = 0;
    Deadline deadline = Deadline::never();
  };
  Work enqueue(std::string what, std::function<void(const algo::CollectiveContext&)> body);
  void workerLoop();
  void runTask(Task& task);  // busy_ set by the caller; clears it and completes the task's Work
  void checkPeer(int peer, const char* what) const;
  P2PTag checkedTag(P2PTag tag) const;
  Work postBatch(const std::vector<P2POp>& ops) { return postOps(ops); }  // batchIsendIrecv without the user-tag check
  Work postOps(std::span<const P2POp> ops);

  transport::GroupIdentity id_;
  std::chrono::milliseconds timeout_;
  CommOptions opts_;
  std::unique_ptr<transport::Transport> transport_;
  std::shared_ptr<RegistrationHost> registrations_ = std::make_shared<RegistrationHost>();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  bool destroyed_ = false;
  uint64_t collectiveSeq_ = 0;
  std::thread worker_;
  mutable std::mutex failMu_;  // guards the three below (never held while calling the transport)
  std::map<int, std::string> failures_;
  bool revoked_ = false;
  std::unique_ptr<transport::HeartbeatMonitor> monitor_;
};

}  // namespace eccl
