// The OFI transport's memory: registrations (one fi_mr per endpoint, keys from a counter unless
// the provider picks them), exported regions, and one-sided reads with fi_read.
#include <rdma/fi_rma.h>

#include <cstring>
#include <random>

#include "base/logging.h"
#include "transport/libfabric/ofi_transport_impl.h"

namespace eccl::transport::ofi {
namespace {

constexpr uint64_t kAccess = FI_SEND | FI_RECV | FI_READ | FI_REMOTE_READ;

}  // namespace

// Under mu_: one fi_mr per endpoint for [ptr, ptr + bytes).
Registration OfiTransport::registerRange(void* ptr, size_t bytes, MemoryKind kind, uint64_t key) {
  Registration reg;
  reg.region = MemoryRegion{ptr, bytes, kind, nextRegionId_++};
  reg.key = key;  // requested; a provider with FI_MR_PROV_KEY picks its own
  for (auto& ep : endpoints_) {
    fid_mr* mr = nullptr;
    long ret = fi_mr_reg(ep->domain(), ptr, bytes, kAccess, 0, key, 0, &mr, nullptr);
    if (ret != 0)
      throw Error(ErrorCode::kSystem, id_.describe() + ": registering " + std::to_string(bytes) + " bytes with '" +
                                          ep->provider() + "': " + fiError("fi_mr_reg", ret) + lockedMemoryHint());
    FidPtr<fid_mr> owned(mr);
    if (ep->bindRegionsToEndpoint()) {
      if ((ret = fi_mr_bind(mr, &ep->ep()->fid, 0)) != 0 || (ret = fi_mr_enable(mr)) != 0)
        throw Error(ErrorCode::kSystem, id_.describe() + ": binding a region to the '" + ep->provider() + "' endpoint: " + fiError("fi_mr_bind", ret));
    }
    if (fi_mr_key(mr) != reg.key) {
      // One key must open the region on every provider a peer may read it through.
      if (endpoints_.size() > 1)
        throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": provider '" + ep->provider() +
                                                     "' picks its own keys, which readable regions over several providers do not support");
      reg.key = fi_mr_key(mr);
    }
    reg.mrs.push_back(std::move(owned));
  }
  return reg;
}

MemoryRegion OfiTransport::registerMemory(void* ptr, size_t bytes, MemoryKind kind) {
  checkRegistration(id_, "the libfabric transport", ptr, bytes, kind);
  std::lock_guard lock(mu_);
  if (!guardRegion_) {  // the guard table, registered with the first region
    size_t keyBytes = 8;
    for (auto& ep : endpoints_) keyBytes = std::min(keyBytes, ep->keyBytes());
    const uint64_t mask = keyBytes >= 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * keyBytes)) - 1;
    keyBase_ = (std::random_device{}() * 0x9e3779b97f4a7c15ull ^ uint64_t(std::random_device{}()) << 32) & mask & ~uint64_t(0xffffff);
    guards_ = std::make_unique<RegionGuards>();
    guardRegion_ = registerRange(guards_->words(), RegionGuards::bytes(), MemoryKind::kHost, keyBase_ + 1);
  }
  // Keys: base + 1 is the guard table's; regions take base + 3, 4, ... (never reused, and the
  // base is random per transport, so a stale blob's key matches no later region).
  Registration reg = registerRange(ptr, bytes, kind, keyBase_ + nextRegionId_ + 1);
  reg.guardSlot = guards_->take(reg.key, id_.describe());
  MemoryRegion out = reg.region;
  regions_.emplace(out.id, std::move(reg));
  return out;
}

void OfiTransport::deregisterMemory(const MemoryRegion& region) {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": deregistering a region of " + std::to_string(region.bytes) +
                                                 " bytes that is not registered here");
  guards_->release(it->second.guardSlot);  // first: a read that overlaps from here on fails
  regions_.erase(it);
}

RegionBlob OfiTransport::exportRegion(const MemoryRegion& region) const {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": exporting a region that is not registered here");
  RemoteRegion r{TransportKind::kOfi, id_.rank, reinterpret_cast<uintptr_t>(region.ptr), region.bytes, it->second.key};
  r.guardAddress = reinterpret_cast<uintptr_t>(guards_->words());
  r.guardKey = guardRegion_->key;
  r.guardSlot = it->second.guardSlot;
  return r.encode();
}

RequestPtr OfiTransport::iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                               const MemoryRegion* local) {
  checkOperation(id_, peer, "read", dst, bytes, local);
  const RemoteRegion r = checkedRemoteRegion(id_, TransportKind::kOfi, peer, remote, offset, bytes);
  std::lock_guard lock(mu_);
  auto req = newRequest(RequestLabel::Op::kRead, peer, nextReadId_++, bytes);
  if (!admit(*req, peer)) return req;
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
  auto op = newOp(req, RequestLabel::Op::kRead, peer);
  const PeerInfo& p = peers_[peer];
  Endpoint& ep = *endpoints_[p.endpoint];
  void* desc = descriptor(*op, p.endpoint, buf, bytes, local, FI_READ);
  // Providers with FI_MR_VIRT_ADDR take the owner's address; the others an offset into the region.
  const uint64_t base = ep.virtualAddressing() ? r.address + offset : offset;
  const PostArgs data{PostArgs::kRead, ep.ep(), buf, desc, p.addr, r.key, base};
  // Guard, data, guard: the region was registered before the data was read and still after it.
  auto deregistered = [this, peer](Op& o) {
    o.error = {ErrorCode::kRemote, peerName(peer) + " deregistered the region (the read would see freed memory)"};
    return false;
  };
  const PostArgs guard = guardRead(*op, r);
  op->then = [this, r, bytes, data, guard, deregistered](Op& o) {
    if (o.guardWord != r.key) return deregistered(o);
    o.then = [this, r, guard, deregistered](Op& o2) {
      o2.then = [r, deregistered](Op& o3) { return o3.guardWord != r.key ? deregistered(o3) : false; };
      return repost(o2, sizeof(uint64_t), guard);
    };
    return repost(o, bytes, data);
  };
  post(std::move(op), sizeof(uint64_t), guard);
  return req;
}

// Posts a read of the owner's guard word for `r` into op.guardWord.
PostArgs OfiTransport::guardRead(Op& op, const RemoteRegion& r) {
  const PeerInfo& p = peers_[op.peer];
  Endpoint& ep = *endpoints_[p.endpoint];
  void* desc = nullptr;
  if (ep.needsLocalRegistration()) {
    fid_mr* mr = nullptr;
    long ret = fi_mr_reg(ep.domain(), &op.guardWord, sizeof(uint64_t), FI_READ, 0, 0, 0, &mr, nullptr);
    if (ret != 0) throw Error(ErrorCode::kSystem, id_.describe() + ": registering a read's guard word: " + fiError("fi_mr_reg", ret));
    op.guardMr.reset(mr);
    desc = fi_mr_desc(mr);
  }
  const uint64_t at = r.guardSlot * sizeof(uint64_t) + (ep.virtualAddressing() ? r.guardAddress : 0);
  return PostArgs{PostArgs::kRead, ep.ep(), reinterpret_cast<uint8_t*>(&op.guardWord), desc, p.addr, r.guardKey, at};
}

}  // namespace eccl::transport::ofi
