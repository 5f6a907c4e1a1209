// The verbs transport's memory: registrations (explicit regions, page-aligned, and per-operation
// ones for buffers outside every region), exported regions, and one-sided reads by RDMA READ.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/logging.h"
#include "transport/ibverbs/verbs_transport_impl.h"

namespace eccl::transport::verbs {
namespace {

constexpr int kRegionAccess = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
// A deregistered region stays with the device this long: a peer's read that saw its guard word
// just before (at most a read window and a few pieces earlier: see kReadWindow) lands on a live
// key rather than breaking the queue pair.
constexpr auto kRetireGrace = std::chrono::seconds(2);

}  // namespace

MrPtr VerbsTransport::registerRange(const void* ptr, size_t bytes, int access, const std::string& what) {
  ibv_mr* mr = ibv_reg_mr(device_->pd(), const_cast<void*>(ptr), bytes, access);
  if (!mr)
    throw Error(ErrorCode::kSystem, id_.describe() + ": registering " + std::to_string(bytes) + " bytes for " + what + " with " +
                                        device_->name() + ": " + verbsError("ibv_reg_mr", errno) + lockedMemoryHint());
  return shareMr(mr);
}

// Under mu_: the registration of `region` (null: none; the operation registers when it needs to).
MrPtr VerbsTransport::mrFor(const MemoryRegion* region, const void* data, size_t bytes, const char* what) {
  if (!region) return nullptr;
  auto it = regions_.find(region->id);
  if (it == regions_.end())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": " + what + " (" + std::to_string(bytes) + " bytes at " +
                                                 std::to_string(reinterpret_cast<uintptr_t>(data)) +
                                                 ") names a region that is not registered with this transport");
  return it->second.mr;
}

void VerbsTransport::releaseRetired(bool all) {
  const auto now = Clock::now();
  while (!retired_.empty() && (all || retired_.front().first <= now)) retired_.pop_front();
}

MemoryRegion VerbsTransport::registerMemory(void* ptr, size_t bytes, MemoryKind kind) {
  checkRegistration(id_, "the verbs transport", ptr, bytes, kind);
  // Whole pages: neighbouring regions share no page, and the device maps pages anyway.
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(ptr) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(ptr) + bytes + page - 1) & ~(page - 1);
  std::lock_guard lock(mu_);
  Registration reg;
  reg.mr = registerRange(reinterpret_cast<void*>(begin), end - begin, kRegionAccess, "a region");
  reg.region = MemoryRegion{ptr, bytes, kind, nextRegionId_++};
  // The serial in the high half makes every registration's key distinct, also when the device
  // hands out an rkey again.
  reg.key = uint64_t(keyBase_ + static_cast<uint32_t>(reg.region.id)) << 32 | reg.mr->rkey;
  reg.guardSlot = guards_.take(reg.key, id_.describe());
  MemoryRegion out = reg.region;
  regions_.emplace(out.id, std::move(reg));
  return out;
}

void VerbsTransport::deregisterMemory(const MemoryRegion& region) {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": deregistering a region of " + std::to_string(region.bytes) +
                                                 " bytes that is not registered here");
  guards_.release(it->second.guardSlot);  // first: a read that overlaps from here on fails
  retired_.emplace_back(Clock::now() + kRetireGrace, std::move(it->second.mr));
  regions_.erase(it);
  releaseRetired(false);
}

RegionBlob VerbsTransport::exportRegion(const MemoryRegion& region) const {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": exporting a region that is not registered here");
  RemoteRegion r{TransportKind::kVerbs, id_.rank, reinterpret_cast<uintptr_t>(region.ptr), region.bytes, it->second.key};
  r.guardAddress = reinterpret_cast<uintptr_t>(guards_.words());
  r.guardKey = guardMr_->rkey;
  r.guardSlot = it->second.guardSlot;
  return r.encode();
}

RequestPtr VerbsTransport::iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                                 const MemoryRegion* local) {
  checkOperation(id_, peer, "read", dst, bytes, local);
  const RemoteRegion r = checkedRemoteRegion(id_, TransportKind::kVerbs, peer, remote, offset, bytes);
  std::lock_guard lock(mu_);
  const uint64_t id = nextOpId_++;
  auto req = newRequest(RequestLabel::Op::kRead, peer, id, bytes);
  if (!admit(*req, peer, false)) return req;
  auto* buf = static_cast<uint8_t*>(dst);
  if (peer == id_.rank || bytes == 0) {  // our own region, or nothing to read
    auto it = std::find_if(regions_.begin(), regions_.end(), [&](auto& kv) { return kv.second.key == r.key; });
    if (peer == id_.rank && it == regions_.end()) {
      req->fail(ErrorCode::kRemote, req->what() + ": the region is no longer registered");
    } else {
      if (bytes) std::memcpy(buf, reinterpret_cast<const uint8_t*>(r.address) + offset, bytes);
      req->complete();
    }
    return req;
  }
  if (freeLanding_.empty())
    throw Error(ErrorCode::kInvalidArgument, req->what() + ": more than " + std::to_string(kLandingSlots) +
                                                 " reads in flight on this transport; wait for some first");
  auto op = std::make_unique<ReadOp>();
  op->mr = local ? mrFor(local, dst, bytes, "a read's buffer") : registerRange(dst, bytes, IBV_ACCESS_LOCAL_WRITE, "a read's buffer");
  op->req = req;
  op->id = id;
  op->peer = peer;
  op->remote = r;
  op->offset = offset;
  op->bytes = bytes;
  op->dst = buf;
  op->landing = freeLanding_.back();
  freeLanding_.pop_back();
  landing_[op->landing] = 0;
  req->setCanceller([this, id] { cancelRead(id); });
  reads_.emplace(id, std::move(op));
  Outgoing o;
  o.kind = Outgoing::kRead;
  o.op = id;
  peers_[peer].control.push_back(std::move(o));
  drainQueues(peer);
  wakeup_.wake();
  return req;
}

// Under mu_: posts what fits of the read's current stage (a guard word, or a window of the data
// in pieces); true once all of it is posted.
bool VerbsTransport::postReads(ReadOp& op) {
  Peer& p = peers_[op.peer];
  const size_t total = op.stageBytes();
  const bool guard = op.guardStage();
  while (op.posted < total && !op.cancelled) {
    if (!guard && p.dataInFlight >= kDataInFlight) return false;
    ibv_sge sge{};
    ibv_send_wr wr{};
    wr.wr_id = wrId(guard ? WrKind::kReadGuard : WrKind::kRead, op.id);
    wr.opcode = IBV_WR_RDMA_READ;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    size_t len = sizeof(uint64_t);
    if (!guard) {
      len = std::min(maxChunk_, total - op.posted);
      const size_t at = op.done + op.posted;
      sge = {reinterpret_cast<uintptr_t>(op.dst + at), static_cast<uint32_t>(len), op.mr->lkey};
      wr.wr.rdma.remote_addr = op.remote.address + op.offset + at;
      wr.wr.rdma.rkey = static_cast<uint32_t>(op.remote.key);
    } else {
      sge = {reinterpret_cast<uintptr_t>(&landing_[op.landing]), sizeof(uint64_t), landingMr_->lkey};
      wr.wr.rdma.remote_addr = op.remote.guardAddress + sizeof(uint64_t) * op.remote.guardSlot;
      wr.wr.rdma.rkey = static_cast<uint32_t>(op.remote.guardKey);
    }
    if (!postSend(op.peer, wr)) return false;
    op.posted += len;
    ++op.outstanding;
    if (!guard) ++p.dataInFlight;
  }
  return true;
}

// Under mu_: a stage of the read completed. Guard, window, guard, window, …, guard: the region
// was registered before each window of the data was read and still after it.
void VerbsTransport::stageRead(ReadOp& op) {
  if (op.guardStage()) {
    const uint64_t guard = __atomic_load_n(&landing_[op.landing], __ATOMIC_ACQUIRE);
    if (guard != op.remote.key)
      return finishRead(op.id, std::pair{ErrorCode::kRemote, peerName(op.peer) + " deregistered the region (the read would see freed memory)"});
    if (op.done == op.bytes) return finishRead(op.id, std::nullopt);
    op.window = std::min(kReadWindow, op.bytes - op.done);
  } else {
    op.done += op.window;
    landing_[op.landing] = 0;
  }
  ++op.stage;
  op.posted = 0;
  Outgoing o;
  o.kind = Outgoing::kRead;
  o.op = op.id;
  peers_[op.peer].control.push_back(std::move(o));
}

}  // namespace eccl::transport::verbs
