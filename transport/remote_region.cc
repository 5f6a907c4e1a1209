#include "transport/remote_region.h"

#include <cstring>

#include "base/error.h"

namespace eccl::transport {
namespace {

constexpr uint32_t kRegionMagic = 0x47524345;  // "ECRG"
constexpr size_t kBlobBytes = 64;

}  // namespace

const char* transportKindName(TransportKind kind) {
  switch (kind) {
    case TransportKind::kSocket: return "socket";
    case TransportKind::kOfi: return "ofi";
    case TransportKind::kVerbs: return "verbs";
    case TransportKind::kShm: return "shm";
  }
  return "unknown";
}

RegionBlob RemoteRegion::encode() const {
  RegionBlob out(kBlobBytes, 0);
  uint8_t* p = out.data();
  const int32_t ownerRank = owner;
  std::memcpy(p, &kRegionMagic, 4);
  p[4] = static_cast<uint8_t>(transport);
  std::memcpy(p + 8, &ownerRank, 4);
  std::memcpy(p + 16, &address, 8);
  std::memcpy(p + 24, &bytes, 8);
  std::memcpy(p + 32, &key, 8);
  std::memcpy(p + 40, &guardAddress, 8);
  std::memcpy(p + 48, &guardKey, 8);
  std::memcpy(p + 56, &guardSlot, 8);
  return out;
}

RemoteRegion checkedRemoteRegion(const GroupIdentity& reader, TransportKind kind, int peer, const RegionBlob& blob,
                                 size_t offset, size_t bytes) {
  const std::string what = reader.describe() + ": read of " + std::to_string(bytes) + " bytes at offset " +
                           std::to_string(offset) + " of rank " + std::to_string(peer) + "'s region";
  uint32_t magic = 0;
  if (blob.size() != kBlobBytes || (std::memcpy(&magic, blob.data(), 4), magic != kRegionMagic))
    throw Error(ErrorCode::kInvalidArgument, what + ": the blob (" + std::to_string(blob.size()) +
                                                 " bytes) is not an exported region");
  RemoteRegion r;
  int32_t ownerRank = 0;
  r.transport = static_cast<TransportKind>(blob[4]);
  std::memcpy(&ownerRank, blob.data() + 8, 4);
  std::memcpy(&r.address, blob.data() + 16, 8);
  std::memcpy(&r.bytes, blob.data() + 24, 8);
  std::memcpy(&r.key, blob.data() + 32, 8);
  std::memcpy(&r.guardAddress, blob.data() + 40, 8);
  std::memcpy(&r.guardKey, blob.data() + 48, 8);
  std::memcpy(&r.guardSlot, blob.data() + 56, 8);
  r.owner = ownerRank;
  if (r.transport != kind)
    throw Error(ErrorCode::kInvalidArgument, what + ": the region was exported by a " + transportKindName(r.transport) +
                                                 " transport, this one is " + transportKindName(kind));
  if (r.owner != peer)
    throw Error(ErrorCode::kInvalidArgument, what + ": the region belongs to rank " + std::to_string(r.owner));
  if (offset > r.bytes || bytes > r.bytes - offset)
    throw Error(ErrorCode::kInvalidArgument, what + ": outside the region's " + std::to_string(r.bytes) + " bytes");
  return r;
}

}  // namespace eccl::transport
