// Registration, export and one-sided reads of the shared-memory transport. A registration is
// bookkeeping plus a slot in this rank's segment that holds the region's key while it is
// registered; a reader copies by cross-memory attach and checks the slot before and after, so a
// read that overlaps a deregistration fails instead of returning freed memory.
#include <cstring>

#include "base/error.h"
#include "transport/argument_checks.h"
#include "transport/remote_region.h"
#include "transport/shm/shm_transport_impl.h"

namespace eccl::transport::shm {

MemoryRegion ShmTransport::registerMemory(void* ptr, size_t bytes, MemoryKind kind) {
  checkRegistration(id_, "the shared-memory transport", ptr, bytes, kind);
  std::lock_guard lock(mu_);
  if (freeSlots_.empty())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": more than " + std::to_string(kRegistrationSlots) + " regions registered at once");
  Registration reg;
  reg.region = MemoryRegion{ptr, bytes, kind, nextRegionId_++};
  reg.key = keyBase_ + reg.region.id;  // never reused; the base is random per transport
  reg.slot = freeSlots_.back();
  freeSlots_.pop_back();
  header()->registrations[reg.slot].store(reg.key, std::memory_order_release);
  regions_.emplace(reg.region.id, reg);
  return reg.region;
}

void ShmTransport::deregisterMemory(const MemoryRegion& region) {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": deregistering a region of " + std::to_string(region.bytes) +
                                                 " bytes that is not registered here");
  header()->registrations[it->second.slot].store(0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // before the caller's reuse of the memory (weakly ordered CPUs)
  freeSlots_.push_back(it->second.slot);
  regions_.erase(it);
}

RegionBlob ShmTransport::exportRegion(const MemoryRegion& region) const {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": exporting a region that is not registered here");
  RemoteRegion r{TransportKind::kShm, id_.rank, reinterpret_cast<uintptr_t>(region.ptr), region.bytes, it->second.key};
  r.guardAddress = reinterpret_cast<uintptr_t>(&header()->registrations[it->second.slot]);
  r.guardSlot = it->second.slot;
  return r.encode();
}

RequestPtr ShmTransport::iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                               const MemoryRegion* local) {
  checkOperation(id_, peer, "read", dst, bytes, local);
  const RemoteRegion r = checkedRemoteRegion(id_, TransportKind::kShm, peer, remote, offset, bytes);
  std::lock_guard lock(mu_);
  auto req = newRequest(RequestLabel::Op::kRead, peer, nextReadId_++, bytes);
  if (!admit(*req, peer) || (peer != id_.rank && departed(*req, peer))) return req;
  if (r.guardSlot >= kRegistrationSlots)
    throw Error(ErrorCode::kInvalidArgument, req->what() + ": the blob names registration slot " + std::to_string(r.guardSlot));
  const auto& slot = (peer == id_.rank ? header() : peers_[peer].header)->registrations[r.guardSlot];
  auto deregistered = [&] {
    req->fail(ErrorCode::kRemote, req->what() + " failed: " + peerName(peer) + " has deregistered the region");
    return req;
  };
  if (slot.load(std::memory_order_acquire) != r.key) return deregistered();
  if (peer == id_.rank) {  // our own region; deregistering it waits for our lock
    if (bytes) std::memcpy(dst, reinterpret_cast<const uint8_t*>(r.address) + offset, bytes);
    req->complete();
    return req;
  }
  std::string err = copyFromProcess(peers_[peer].pid, r.address + offset, static_cast<uint8_t*>(dst), bytes);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot.load(std::memory_order_acquire) != r.key) return deregistered();  // what we copied may be stale
  if (!err.empty()) req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: copying from " + peerName(peer) + " failed: " + err);
  else req->complete();
  return req;
}

}  // namespace eccl::transport::shm
