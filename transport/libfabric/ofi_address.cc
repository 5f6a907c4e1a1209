#include "transport/libfabric/ofi_address.h"

#include "base/error.h"
#include "transport/blob_codec.h"

namespace eccl::transport::ofi {
namespace {

constexpr uint32_t kMagic = 0x464f4345;  // "ECOF"
constexpr uint16_t kVersion = 1;

}  // namespace

AddressBlob OfiAddress::encode() const {
  BlobWriter w;
  w.put(kMagic).put(uint32_t(kVersion) | uint32_t(endpoints.size()) << 16).str(hostId).str(sideChannel);
  for (auto& e : endpoints) w.str(e.provider).bytes(e.name);
  return w.take();
}

OfiAddress OfiAddress::decode(const AddressBlob& blob, const std::string& whose) {
  BlobReader r(blob, whose, "a libfabric address");
  if (r.get<uint32_t>() != kMagic)
    throw Error(ErrorCode::kProtocol, whose + " published an address that is not a libfabric transport's (does every rank use ECCL_TRANSPORT=ofi?)");
  const auto word = r.get<uint32_t>();
  if ((word & 0xffff) != kVersion) r.fail("of version " + std::to_string(word & 0xffff) + ", expected " + std::to_string(kVersion));
  OfiAddress a;
  a.hostId = r.str();
  a.sideChannel = r.str();
  for (uint32_t i = 0, n = word >> 16; i < n; ++i) {
    Named e;
    e.provider = r.str();
    e.name = r.bytes();
    a.endpoints.push_back(std::move(e));
  }
  return a;
}

const OfiAddress::Named* OfiAddress::find(const std::string& provider) const {
  for (auto& e : endpoints)
    if (e.provider == provider) return &e;
  return nullptr;
}

}  // namespace eccl::transport::ofi
