#include "transport/shm/shm_address.h"

#include "transport/blob_codec.h"

namespace eccl::transport::shm {
namespace {

constexpr uint32_t kMagic = 0x48534345;  // "ECSH"
constexpr uint32_t kVersion = 3;  // 2: the chunk pool; 3: grants (kGrant)

}  // namespace

AddressBlob ShmAddress::encode() const {
  BlobWriter w;
  w.put(kMagic).put(kVersion).str(hostId).str(sideChannel).put(int32_t(pid)).put(int32_t(fd));
  w.put(segmentBytes).put(ringBytes).put(probeAddress).put(poolBytes).put(chunkBytes);
  return w.take();
}

ShmAddress ShmAddress::decode(const AddressBlob& blob, const std::string& whose) {
  BlobReader r(blob, whose, "a shared-memory address");
  if (r.get<uint32_t>() != kMagic)
    throw Error(ErrorCode::kProtocol, whose + " published an address that is not a shared-memory transport's (does every rank use the same ECCL_TRANSPORT?)");
  if (auto v = r.get<uint32_t>(); v != kVersion) r.fail("of version " + std::to_string(v) + ", expected " + std::to_string(kVersion));
  ShmAddress a;
  a.hostId = r.str();
  a.sideChannel = r.str();
  a.pid = r.get<int32_t>();
  a.fd = r.get<int32_t>();
  a.segmentBytes = r.get<uint64_t>();
  a.ringBytes = r.get<uint64_t>();
  a.probeAddress = r.get<uint64_t>();
  a.poolBytes = r.get<uint64_t>();
  a.chunkBytes = r.get<uint64_t>();
  return a;
}

}  // namespace eccl::transport::shm
