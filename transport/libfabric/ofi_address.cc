#include "transport/libfabric/ofi_address.h"

#include <unistd.h>

#include <cstring>
#include <fstream>

#include "base/env.h"
#include "base/error.h"

namespace eccl::transport::ofi {
namespace {

constexpr uint32_t kMagic = 0x464f4345;  // "ECOF"
constexpr uint16_t kVersion = 1;
constexpr uint32_t kMaxString = 1 << 16;

void putU32(AddressBlob& out, uint32_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}
void putBytes(AddressBlob& out, const void* data, size_t n) {
  putU32(out, static_cast<uint32_t>(n));
  const auto* p = static_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + n);
}

struct Reader {
  const AddressBlob& in;
  const std::string& whose;
  size_t at = 0;
  void need(size_t n) {
    if (in.size() - at < n)
      throw Error(ErrorCode::kProtocol, whose + " published a truncated libfabric address (" + std::to_string(in.size()) + " bytes)");
  }
  uint32_t u32() {
    need(4);
    uint32_t v;
    std::memcpy(&v, in.data() + at, 4);
    at += 4;
    return v;
  }
  std::vector<uint8_t> bytes() {
    const uint32_t n = u32();
    if (n > kMaxString) throw Error(ErrorCode::kProtocol, whose + " published a libfabric address with a " + std::to_string(n) + "-byte field");
    need(n);
    std::vector<uint8_t> v(in.begin() + at, in.begin() + at + n);
    at += n;
    return v;
  }
  std::string str() {
    auto v = bytes();
    return std::string(v.begin(), v.end());
  }
};

}  // namespace

AddressBlob OfiAddress::encode() const {
  AddressBlob out;
  putU32(out, kMagic);
  putU32(out, uint32_t(kVersion) | uint32_t(endpoints.size()) << 16);
  putBytes(out, hostId.data(), hostId.size());
  putBytes(out, sideChannel.data(), sideChannel.size());
  for (auto& e : endpoints) {
    putBytes(out, e.provider.data(), e.provider.size());
    putBytes(out, e.name.data(), e.name.size());
  }
  return out;
}

OfiAddress OfiAddress::decode(const AddressBlob& blob, const std::string& whose) {
  Reader r{blob, whose};
  if (r.u32() != kMagic)
    throw Error(ErrorCode::kProtocol, whose + " published an address that is not a libfabric transport's (does every rank use ECCL_TRANSPORT=ofi?)");
  const uint32_t word = r.u32();
  if ((word & 0xffff) != kVersion)
    throw Error(ErrorCode::kProtocol, whose + " published a libfabric address of version " + std::to_string(word & 0xffff) + ", expected " + std::to_string(kVersion));
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

std::string localHostId() {
  if (auto id = envString("ECCL_HOST_ID")) return *id;
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return std::string(host) + "/" + boot;
}

}  // namespace eccl::transport::ofi
