#include "transport/ibverbs/verbs_address.h"

#include "base/error.h"
#include "transport/blob_codec.h"

namespace eccl::transport::verbs {
namespace {

constexpr uint32_t kMagic = 0x4249'4345;  // "ECIB"
constexpr uint16_t kVersion = 2;
constexpr uint32_t kMaxRanks = 1 << 16;

}  // namespace

AddressBlob VerbsAddress::encode() const {
  BlobWriter w;
  w.put(kMagic).put(uint32_t(kVersion)).str(hostId).str(sideChannel);
  for (uint8_t b : gid) w.put(b);
  w.put(lid).put(mtu).put(uint8_t(roce)).put(creditAddress).put(creditKey);
  w.put(eagerBytes).put(creditLimit).put(psn).put(readDepth).put(uint32_t(qpn.size()));
  for (uint32_t q : qpn) w.put(q);
  return w.take();
}

VerbsAddress VerbsAddress::decode(const AddressBlob& blob, const std::string& whose) {
  BlobReader r(blob, whose, "a verbs address");
  if (r.get<uint32_t>() != kMagic)
    throw Error(ErrorCode::kProtocol, whose + " published an address that is not a verbs transport's (does every rank use ECCL_TRANSPORT=verbs?)");
  if (const auto v = r.get<uint32_t>() & 0xffff; v != kVersion)
    r.fail("of version " + std::to_string(v) + ", expected " + std::to_string(kVersion));
  VerbsAddress a;
  a.hostId = r.str();
  a.sideChannel = r.str();
  for (uint8_t& b : a.gid) b = r.get<uint8_t>();
  a.lid = r.get<uint16_t>();
  a.mtu = r.get<uint8_t>();
  a.roce = r.get<uint8_t>() != 0;
  a.creditAddress = r.get<uint64_t>();
  a.creditKey = r.get<uint32_t>();
  a.eagerBytes = r.get<uint32_t>();
  a.creditLimit = r.get<uint32_t>();
  a.psn = r.get<uint32_t>();
  a.readDepth = r.get<uint8_t>();
  const auto n = r.get<uint32_t>();
  if (n > kMaxRanks) r.fail("for " + std::to_string(n) + " ranks");
  for (uint32_t i = 0; i < n; ++i) a.qpn.push_back(r.get<uint32_t>());
  if (!r.done()) r.fail("with trailing bytes");
  return a;
}

}  // namespace eccl::transport::verbs
