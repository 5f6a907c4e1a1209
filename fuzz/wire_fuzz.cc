// What a peer (or anyone who reaches a listening port) sends a transport before trust: chunk
// headers, the socket hello, and the published address and region blobs. Invariants: decoders
// return a reason or throw eccl::Error, nothing else; an accepted chunk header re-encodes to the
// same fields; an accepted region blob describes the range that was asked for.
#include <cstdlib>

#include "base/error.h"
#include "fuzz/fuzz_input.h"
#include "transport/remote_region.h"
#include "transport/shm/shm_address.h"
#include "transport/socket/address.h"
#include "transport/socket/socket_connector.h"
#include "transport/socket/socket_wire.h"

using namespace eccl;
using namespace eccl::transport;

namespace {

void chunkHeader(const std::string& b) {
  if (b.size() < wire::kChunkHeaderBytes) return;
  wire::ChunkHeader h;
  if (!wire::decode(reinterpret_cast<const uint8_t*>(b.data()), h)) return;
  uint8_t again[wire::kChunkHeaderBytes];
  wire::encode(h, again);
  wire::ChunkHeader h2;
  if (!wire::decode(again, h2) || h2.type != h.type || h2.tag != h.tag || h2.seq != h.seq || h2.len != h.len ||
      h2.offset != h.offset || h2.total != h.total)
    std::abort();
}

void hello(const std::string& b, fuzz::FuzzInput& in) {
  if (b.size() < wire::kHelloFixedBytes) return;
  wire::Hello h;
  uint32_t glen = 0;
  if (!wire::decodeHelloFixed(reinterpret_cast<const uint8_t*>(b.data()), h, glen).empty()) return;
  if (glen > wire::kMaxGroupName) std::abort();
  h.group = b.substr(wire::kHelloFixedBytes, glen);
  GroupIdentity id{in.bytes(16), in.take<uint64_t>() % 4, int(in.take<uint8_t>() % 8), int(in.take<uint8_t>() % 8 + 1)};
  (void)helloMismatch(id, in.take<uint8_t>() % 4 + 1, h);
}

void addresses(const std::string& b, fuzz::FuzzInput& in) {
  try {
    (void)SocketAddress::parse(b);
  } catch (const Error&) {
  }
  AddressBlob blob(b.begin(), b.end());
  try {
    (void)shm::ShmAddress::decode(blob, "rank 1");
  } catch (const Error&) {
  }
  const size_t offset = in.take<uint32_t>(), bytes = in.take<uint32_t>();
  try {
    GroupIdentity reader{"g", 0, 0, 4};
    const auto kind = static_cast<TransportKind>(in.take<uint8_t>() % 5);  // named: argument order is unspecified
    const int peer = in.take<uint8_t>() % 4;
    RemoteRegion r = checkedRemoteRegion(reader, kind, peer, blob, offset, bytes);
    if (offset > r.bytes || bytes > r.bytes - offset) std::abort();  // accepted a range it does not hold
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t which = in.take<uint8_t>() % 3;
  const std::string b = in.bytes(512);
  switch (which) {
    case 0: chunkHeader(b); break;
    case 1: hello(b, in); break;
    default: addresses(b, in); break;
  }
  return 0;
}
