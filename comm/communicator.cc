#include "comm/communicator.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/thread_name.h"
#include "comm/algorithms/argument_agreement.h"
#include "comm/algorithms/binomial_broadcast.h"
#include "comm/algorithms/bruck_all_gather.h"
#include "comm/algorithms/collective_context.h"
#include "comm/algorithms/dissemination_barrier.h"
#include "comm/algorithms/pairwise_all_to_all.h"
#include "comm/algorithms/ring_all_gather.h"
#include "comm/algorithms/ring_reduce_scatter.h"
#include "base/env.h"
#include "base/error.h"
#include "base/logging.h"

namespace eccl {
namespace {

constexpr transport::Tag kCollectiveBit = transport::Tag(1) << 63;
constexpr P2PTag kObjBit = P2PTag(1) << 62;  // sendObj/recvObj: a tag stream of their own

std::vector<size_t> prefix(const std::vector<size_t>& v) {
  std::vector<size_t> out(v.size(), 0);
  for (size_t i = 1; i < v.size(); ++i) out[i] = out[i - 1] + v[i - 1];
  return out;
}

// Splits count elements into n nearly equal blocks.
void split(size_t count, int n, std::vector<size_t>& counts, std::vector<size_t>& offsets) {
  counts.assign(n, count / n);
  for (size_t i = 0; i < count % n; ++i) counts[i]++;
  offsets = prefix(counts);
}

}  // namespace

Communicator::Communicator(std::unique_ptr<transport::Transport> t, CommOptions options)
    : id_(t->identity()),
      timeout_(operationTimeout(options.timeout)),
      opts_(options),
      transport_(std::move(t)) {
  registrations_->transport = transport_.get();
  worker_ = std::thread([this] {
    nameThisThread("eccl-comm");
    workerLoop();
  });
}

Communicator::~Communicator() { destroy(); }

P2PTag Communicator::checkedTag(P2PTag tag) const {
  if (tag > kMaxP2PTag)
    throw Error(ErrorCode::kInvalidArgument, "P2P tag " + std::to_string(tag) + " on " + id_.describe() +
                                                 " is above the largest allowed, 2^62 - 1");
  return tag;
}

void Communicator::checkPeer(int peer, const char* what) const {
  if (peer < 0 || peer >= id_.size)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " on " + id_.describe() + ": peer " + std::to_string(peer) +
                                                 " is not a rank of the group (0.." + std::to_string(id_.size - 1) + ")");
}

Work Communicator::isend(const void* buf, size_t bytes, int peer, P2PTag tag, const transport::MemoryRegion* region) {
  checkedTag(tag);
  const P2POp op{P2POp::kSend, const_cast<void*>(buf), bytes, peer, tag, region};
  return postOps({&op, 1});
}

Work Communicator::irecv(void* buf, size_t bytes, int peer, P2PTag tag, const transport::MemoryRegion* region) {
  checkedTag(tag);
  const P2POp op{P2POp::kRecv, buf, bytes, peer, tag, region};
  return postOps({&op, 1});
}

RegisteredMemory Communicator::registerMemory(void* ptr, size_t bytes, transport::MemoryKind kind) {
  std::lock_guard lock(registrations_->mu);
  if (!registrations_->transport)
    throw Error(ErrorCode::kAborted, id_.describe() + ": registering memory with a destroyed communicator");
  return RegisteredMemory(registrations_, registrations_->transport->registerMemory(ptr, bytes, kind));
}

Work Communicator::iread(int peer, const transport::RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                         const transport::MemoryRegion* local) {
  if (!transport_) throw Error(ErrorCode::kAborted, id_.describe() + ": read on a destroyed communicator");
  checkPeer(peer, "read");
  if (dst == nullptr && bytes > 0)
    throw Error(ErrorCode::kInvalidArgument, "read of " + std::to_string(bytes) + " bytes from peer " + std::to_string(peer) +
                                                 " has a null buffer");
  return Work(transport_->iread(peer, remote, offset, dst, bytes, local), "read", timeout_);
}

Work Communicator::batchIsendIrecv(const std::vector<P2POp>& ops) {
  for (auto& op : ops) checkedTag(op.tag);
  return postBatch(ops);
}

Work Communicator::postOps(std::span<const P2POp> ops) {
  if (!transport_) throw Error(ErrorCode::kAborted, id_.describe() + ": P2P on a destroyed communicator");
  for (auto& op : ops) {
    checkPeer(op.peer, op.kind == P2POp::kSend ? "send" : "recv");
    if (op.buf == nullptr && op.bytes > 0)
      throw Error(ErrorCode::kInvalidArgument, std::string(op.kind == P2POp::kSend ? "send" : "recv") + " of " +
                                                   std::to_string(op.bytes) + " bytes with peer " + std::to_string(op.peer) +
                                                   " has a null buffer");
  }
  auto post = [this](const P2POp& op) {
    return op.kind == P2POp::kRecv ? transport_->irecv(op.peer, op.tag, op.buf, op.bytes, op.region)
                                   : transport_->isend(op.peer, op.tag, op.buf, op.bytes, op.region);
  };
  auto movedAlready = [](const transport::RequestPtr& r) { return r->test() && !r->error(); };
  // Nothing to move (a rank with no experts to send for a layer), or all of it moved already
  // (small sends copied into a ring): a Work that needs no state of its own. Most small sends
  // are like this, and allocating for them was a noticeable part of their latency. A single
  // operation still under way is its request alone (no WorkState either).
  if (ops.size() == 1) {
    auto r = post(ops[0]);
    if (movedAlready(r)) return Work::finishedP2P();
    return Work(std::move(r), ops[0].kind == P2POp::kSend ? "send" : "recv", timeout_);
  }
  std::vector<transport::RequestPtr> reqs;
  reqs.reserve(ops.size());
  // Receives first: data that arrives early lands straight in its buffer.
  for (auto& op : ops)
    if (op.kind == P2POp::kRecv) reqs.push_back(post(op));
  for (auto& op : ops)
    if (op.kind == P2POp::kSend) reqs.push_back(post(op));
  if (std::all_of(reqs.begin(), reqs.end(), movedAlready)) return Work::finishedP2P();
  auto state = std::make_shared<WorkState>("batch_isend_irecv of " + std::to_string(ops.size()) + " operations", timeout_);
  state->addRequests(std::move(reqs));
  return Work(state);
}

namespace {
thread_local bool tlBlockingCall = false;  // the thread will wait for the collective it submits
}  // namespace

Communicator::BlockingCall::BlockingCall() : previous_(tlBlockingCall) { tlBlockingCall = true; }
Communicator::BlockingCall::~BlockingCall() { tlBlockingCall = previous_; }

Work Communicator::enqueue(std::string what, std::function<void(const algo::CollectiveContext&)> body) {
  auto state = std::make_shared<WorkState>(what, timeout_);
  std::unique_lock lock(mu_);
  if (destroyed_ || stopping_) {
    state->fail(what + " on " + id_.describe() + ": the communicator was destroyed", static_cast<int>(ErrorCode::kAborted));
    return Work(state);
  }
  Task task{state, std::move(body), kCollectiveBit | collectiveSeq_++, Deadline::after(timeout_)};
  if (tlBlockingCall && !busy_ && queue_.empty()) {
    // Nothing ahead of it and the caller waits anyway: run it here. busy_ keeps the worker off
    // anything queued meanwhile, which therefore still runs after this one.
    busy_ = true;
    lock.unlock();
    runTask(task);
    return Work(state);
  }
  queue_.push_back(std::move(task));
  cv_.notify_all();
  return Work(state);
}

void Communicator::workerLoop() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || (!queue_.empty() && !busy_); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    runTask(task);
  }
}

void Communicator::runTask(Task& task) {
  {
    const std::string& what = task.state->what();
    std::optional<std::pair<std::string, ErrorCode>> failure;
    try {
      if (auto broken = transport_->asyncError())
        throw Error(ErrorCode::kAborted, "the group is broken: " + *broken);
      algo::CollectiveContext ctx{*transport_, id_.rank, id_.size, task.tag, task.deadline};
      task.body(ctx);
    } catch (const Error& e) {
      failure = {what + " failed: " + e.what(), e.code()};
      // Peers may be waiting for our part of it: a timed-out collective leaves the group in an
      // unknown state, so fail it everywhere rather than let others hang.
      if (e.code() == ErrorCode::kTimeout) transport_->abort(what + " timed out on rank " + std::to_string(id_.rank));
    } catch (const std::exception& e) {
      failure = {what + " failed: " + e.what(), ErrorCode::kInvalidArgument};
    } catch (...) {
      failure = {what + " failed: an unknown exception", ErrorCode::kInvalidArgument};
    }
    {
      // Idle before the caller hears of completion: a destroy() right after wait() must not
      // mistake the finished operation for one in flight. Notify under the lock: once busy_ is
      // false, destroy() (on another thread) may free this communicator. Only the worker (for
      // queued work) and destroy() (which sets stopping_ first) wait for busy_ to clear: waking
      // the idle worker after every collective run on its caller's thread would cost a context
      // switch and a lock fight per call.
      std::lock_guard lock(mu_);
      busy_ = false;
      if (!queue_.empty() || stopping_) cv_.notify_all();
    }
    if (failure) task.state->fail(failure->first, static_cast<int>(failure->second));
    else task.state->finish();
  }
}

// `n` times `each` bytes; an error naming the operation when that overflows a size (F9).
static size_t bytesTimes(size_t each, size_t n, const std::string& what) {
  // No buffer is larger than PTRDIFF_MAX bytes.
  if (n != 0 && each > static_cast<size_t>(std::numeric_limits<ptrdiff_t>::max()) / n)
    throw Error(ErrorCode::kInvalidArgument, what + ": " + std::to_string(each) + " x " + std::to_string(n) + " bytes overflows a size");
  return each * n;
}

Work Communicator::allGatherAsync(const void* send, void* recv, size_t bytes) {
  bytesTimes(bytes, static_cast<size_t>(id_.size), "all_gather on " + id_.describe());
  auto* out = static_cast<uint8_t*>(recv);
  std::string what = "all_gather of " + std::to_string(bytes) + " bytes per rank";
  bool small = bytes < opts_.smallMessageBytes;
  return enqueue(what, [=, this](const algo::CollectiveContext& c) {
    if (small) return algo::bruckAllGather(c, send, out, bytes);
    std::vector<size_t> counts(c.size, bytes), offsets(c.size);
    for (int r = 0; r < c.size; ++r) offsets[r] = r * bytes;
    logger().debug("{} on {}: ring", what, id_.describe());
    algo::ringAllGatherV(c, out, offsets, counts, static_cast<const uint8_t*>(send));
  });
}

Work Communicator::allGatherVAsync(const void* send, size_t sendBytes, void* recv, const std::vector<size_t>& recvBytes) {
  if (static_cast<int>(recvBytes.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, "all_gather_v on " + id_.describe() + ": " + std::to_string(recvBytes.size()) +
                                                 " receive sizes for a group of " + std::to_string(id_.size));
  if (recvBytes[id_.rank] != sendBytes)
    throw Error(ErrorCode::kInvalidArgument, "all_gather_v on " + id_.describe() + ": sends " + std::to_string(sendBytes) +
                                                 " bytes but its own receive size is " + std::to_string(recvBytes[id_.rank]));
  auto offsets = prefix(recvBytes);
  auto* out = static_cast<uint8_t*>(recv);
  size_t total = std::accumulate(recvBytes.begin(), recvBytes.end(), size_t(0));
  return enqueue("all_gather_v of " + std::to_string(total) + " bytes", [=](const algo::CollectiveContext& c) {
    algo::ringAllGatherV(c, out, offsets, recvBytes, static_cast<const uint8_t*>(send));
  });
}

Work Communicator::broadcastAsync(void* buf, size_t bytes, int root) {
  checkPeer(root, "broadcast root");
  return enqueue("broadcast of " + std::to_string(bytes) + " bytes from rank " + std::to_string(root),
                 [=](const algo::CollectiveContext& c) {
                   // Ranks naming different roots would each return success holding different
                   // data: agree on root and size first (a few 32-byte messages), fail everywhere.
                   algo::requireAgreement(c, "broadcast", {{"root", uint64_t(root)}, {"size in bytes", bytes}});
                   algo::binomialBroadcast(c, buf, bytes, root);
                 });
}

Work Communicator::allReduceAsync(const void* send, void* recv, size_t count, DataType type, ReduceOp op) {
  const size_t es = dataTypeSize(type), bytes = bytesTimes(count, es, "all_reduce on " + id_.describe());
  bytesTimes(bytes, static_cast<size_t>(id_.size), "all_reduce on " + id_.describe());
  requireReducible(type, op, "all_reduce on " + id_.describe());
  auto* out = static_cast<uint8_t*>(recv);
  bool small = bytes < opts_.smallMessageBytes || count < static_cast<size_t>(id_.size);
  std::string what = std::string("all_reduce (") + reduceOpName(op) + ") of " + std::to_string(count) + " " +
                     dataTypeName(type) + " elements";
  return enqueue(what, [=](const algo::CollectiveContext& c) {
    if (small) {
      // Gather everyone's input, then reduce in rank order: same result on every rank.
      std::vector<uint8_t> all(bytes * c.size);
      algo::bruckAllGather(c, send, all.data(), bytes);
      if (bytes) std::memcpy(out, all.data(), bytes);
      for (int r = 1; r < c.size; ++r) reduceInto(out, all.data() + r * bytes, count, type, op);
      return;
    }
    if (send != out) std::memcpy(out, send, bytes);
    std::vector<size_t> counts, offsets;
    split(count, c.size, counts, offsets);
    algo::ringReduceScatter(c, out, offsets, counts, type, op);
    std::vector<size_t> byteCounts(c.size), byteOffsets(c.size);
    for (int r = 0; r < c.size; ++r) {
      byteCounts[r] = counts[r] * es;
      byteOffsets[r] = offsets[r] * es;
    }
    algo::ringAllGatherV(c, out, byteOffsets, byteCounts);
  });
}

Work Communicator::reduceScatterAsync(const void* send, void* recv, size_t recvCount, DataType type, ReduceOp op) {
  const size_t es = dataTypeSize(type);
  requireReducible(type, op, "reduce_scatter on " + id_.describe());
  bytesTimes(bytesTimes(recvCount, es, "reduce_scatter on " + id_.describe()), static_cast<size_t>(id_.size),
             "reduce_scatter on " + id_.describe());
  return enqueue(std::string("reduce_scatter (") + reduceOpName(op) + ") of " + std::to_string(recvCount) + " " +
                     dataTypeName(type) + " elements per rank",
                 [=](const algo::CollectiveContext& c) {
                   std::vector<uint8_t> work(recvCount * es * c.size);
                   if (!work.empty()) std::memcpy(work.data(), send, work.size());
                   std::vector<size_t> counts(c.size, recvCount), offsets(c.size);
                   for (int r = 0; r < c.size; ++r) offsets[r] = r * recvCount;
                   algo::ringReduceScatter(c, work.data(), offsets, counts, type, op);
                   if (recvCount) std::memcpy(recv, work.data() + c.rank * recvCount * es, recvCount * es);
                 });
}

Work Communicator::allToAllVAsync(const void* send, const std::vector<size_t>& sendBytes, const std::vector<size_t>& sendOffsets,
                                  void* recv, const std::vector<size_t>& recvBytes, const std::vector<size_t>& recvOffsets) {
  for (auto* v : {&sendBytes, &sendOffsets, &recvBytes, &recvOffsets})
    if (static_cast<int>(v->size()) != id_.size)
      throw Error(ErrorCode::kInvalidArgument, "all_to_all_v on " + id_.describe() + ": count/offset lists need " +
                                                   std::to_string(id_.size) + " entries, got " + std::to_string(v->size()));
  size_t total = std::accumulate(sendBytes.begin(), sendBytes.end(), size_t(0));
  return enqueue("all_to_all_v of " + std::to_string(total) + " bytes", [=](const algo::CollectiveContext& c) {
    algo::pairwiseAllToAllV(c, static_cast<const uint8_t*>(send), sendBytes, sendOffsets, static_cast<uint8_t*>(recv),
                            recvBytes, recvOffsets);
  });
}

Work Communicator::barrierAsync() {
  return enqueue("barrier", [](const algo::CollectiveContext& c) { algo::disseminationBarrier(c); });
}

std::vector<std::vector<uint8_t>> Communicator::allGatherObj(const std::vector<uint8_t>& mine) {
  uint64_t size = mine.size();
  std::vector<uint64_t> sizes(id_.size);
  allGather(&size, sizes.data(), sizeof(uint64_t));
  std::vector<size_t> bytes(sizes.begin(), sizes.end());
  std::vector<uint8_t> all(std::accumulate(bytes.begin(), bytes.end(), size_t(0)));
  allGatherV(mine.data(), mine.size(), all.data(), bytes);
  std::vector<std::vector<uint8_t>> out;
  size_t at = 0;
  for (size_t b : bytes) {
    out.emplace_back(all.begin() + at, all.begin() + at + b);
    at += b;
  }
  return out;
}

std::vector<uint8_t> Communicator::broadcastObj(const std::vector<uint8_t>& obj, int root) {
  uint64_t size = obj.size();
  broadcast(&size, sizeof(size), root);
  std::vector<uint8_t> out = id_.rank == root ? obj : std::vector<uint8_t>(size);
  broadcast(out.data(), out.size(), root);
  return out;
}

void Communicator::sendObj(const std::vector<uint8_t>& obj, int peer, P2PTag tag) {
  uint64_t size = obj.size();
  const P2PTag t = kObjBit | checkedTag(tag);
  postBatch({{P2POp::kSend, &size, sizeof(size), peer, t},
             {P2POp::kSend, const_cast<uint8_t*>(obj.data()), obj.size(), peer, t}})
      .wait();
}

std::vector<uint8_t> Communicator::recvObj(int peer, P2PTag tag) {
  uint64_t size = 0;
  const P2PTag t = kObjBit | checkedTag(tag);
  postBatch({{P2POp::kRecv, &size, sizeof(size), peer, t}}).wait();
  std::vector<uint8_t> out(size);
  postBatch({{P2POp::kRecv, out.data(), out.size(), peer, t}}).wait();
  return out;
}

void Communicator::abort(const std::string& reason) {
  if (transport_) transport_->abort(reason);
}

void Communicator::revoke(const std::string& reason, const std::vector<int>& failed) {
  std::string known;
  bool first;
  {
    std::lock_guard lock(failMu_);
    for (int r : failed)
      if (r >= 0 && r < id_.size && r != id_.rank) failures_.emplace(r, "named by revoke(): " + reason);
    first = !revoked_;
    revoked_ = true;
    for (auto& [r, ev] : failures_) {
      if (!known.empty()) known += ", ";
      known += std::to_string(r);
    }
  }
  if (!first) return;  // the transport has failed everything already
  const std::string why = "revoked by rank " + std::to_string(id_.rank) + ": " + reason +
                          (known.empty() ? std::string() : " (failed ranks: " + known + ")");
  if (transport_) transport_->abort(why);
}

bool Communicator::revoked() const {
  std::lock_guard lock(failMu_);
  return revoked_;
}

std::map<int, std::string> Communicator::failures() const {
  std::lock_guard lock(failMu_);
  return failures_;
}

std::vector<int> Communicator::failedRanks() const {
  std::vector<int> out;
  for (auto& [r, ev] : failures()) out.push_back(r);
  return out;
}

void Communicator::attachMonitor(std::unique_ptr<transport::HeartbeatMonitor> monitor) {
  std::lock_guard lock(failMu_);
  monitor_ = std::move(monitor);
}

void Communicator::peerFailed(int rank, const std::string& evidence) {
  {
    std::lock_guard lock(failMu_);
    if (!failures_.emplace(rank, evidence).second) return;
  }
  revoke(evidence);
}

std::optional<ErrorCode> Communicator::asyncErrorCode() const {
  auto code = transport_ ? transport_->asyncErrorCode() : std::optional<ErrorCode>(ErrorCode::kAborted);
  // Broken because peers failed: whichever came first here — the transport seeing the closed
  // connection, the heartbeat monitor's revoke, another rank's relayed revoke — it is a lost peer.
  if (code && transport_) {
    std::lock_guard lock(failMu_);
    if (!failures_.empty()) return ErrorCode::kConnectionClosed;
  }
  return code;
}

std::optional<std::string> Communicator::asyncError() const {
  return transport_ ? transport_->asyncError() : std::optional<std::string>("the communicator was destroyed");
}

void Communicator::destroy() {
  std::deque<Task> dropped;
  bool inFlight;
  {
    // First: its thread calls into the transport (revoke), which goes away below.
    std::unique_ptr<transport::HeartbeatMonitor> monitor;
    {
      std::lock_guard lock(failMu_);
      monitor = std::move(monitor_);
    }
  }
  {
    std::lock_guard lock(mu_);
    if (destroyed_) return;
    destroyed_ = stopping_ = true;
    dropped.swap(queue_);
    inFlight = busy_ || !dropped.empty();
  }
  cv_.notify_all();
  // Operations still in flight would leave peers waiting: fail them everywhere.
  if (inFlight) transport_->abort("rank " + std::to_string(id_.rank) + " destroyed the communicator with operations in flight");
  for (auto& t : dropped)
    t.state->fail(t.state->what() + " on " + id_.describe() + ": the communicator was destroyed",
                  static_cast<int>(ErrorCode::kAborted));
  if (worker_.joinable()) worker_.join();
  {
    // A collective running on its caller's thread (aborted above, so it ends soon) still uses
    // the transport.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
  }
  {
    std::lock_guard lock(registrations_->mu);  // handles still alive now do nothing
    registrations_->transport = nullptr;
  }
  transport_.reset();  // closes sockets, stops the progress thread, fails pending P2P requests
}

}  // namespace eccl
