// What the socket transport puts on the wire.
//
// Handshake (once per TCP connection, connector → acceptor, then one reply):
//   Hello: u32 magic "ECSH", u16 version, u16 stream, u32 nsocks, i32 from, i32 to, i32 size,
//          u64 epoch, u32 group length, group name bytes.
//   Reply: u32 magic, u32 ok (1/0), u32 message length, message (why it was refused).
// Data (any number of chunks afterwards, both directions): a 48-byte header then `len` bytes.
//   u32 magic "ECSD", u16 type, u16 flags, u64 tag, u64 seq, u64 total, u64 offset, u32 len, u32 0.
// A message (tag, seq) of `total` bytes is one or more chunks, possibly on different sockets of
// the same peer (striping); `seq` counts messages per (peer, tag) in posting order.
// An abort chunk carries the reason as its payload; a bye chunk (clean teardown) carries none.
//
// Small messages are sent eagerly (the receiver stages them if no receive is posted yet). Large
// ones (rendezvous) flow only once the receiver has a buffer for them, so they are never staged:
// posting a large receive sends "clear to send" (CTS, no payload) for its (tag, seq); a large
// send waits for that CTS, and if it has none yet announces itself with "ready to send" (RTS,
// total = its size), which the receiver answers with a CTS once any receive for it is posted.
// Data chunks sent after a CTS carry kGranted; with no receive posted for them (it was
// cancelled) they are discarded, never staged.
//
// One-sided reads (iread): the reader sends a read request (tag = its read id, seq = region key,
// offset = offset within the region, total = bytes, no payload); the owner's progress thread
// answers with read-reply data chunks (tag = read id) straight from the region, or with a
// read-refused chunk whose payload says why (the region is gone, the range is outside it).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace eccl::transport::wire {

constexpr uint32_t kHelloMagic = 0x48534345;  // "ECSH"
constexpr uint32_t kDataMagic = 0x44534345;   // "ECSD"
constexpr uint16_t kVersion = 3;
constexpr size_t kChunkHeaderBytes = 48;
constexpr uint32_t kMaxGroupName = 4096;
constexpr uint32_t kMaxAbortReason = 4096;

// kBye: the sender is tearing down cleanly; its hang-up that follows is not a failure.
enum ChunkType : uint16_t { kData = 1, kAbort = 2, kBye = 3, kReadyToSend = 4, kClearToSend = 5,
                         kReadRequest = 6, kReadReply = 7, kReadRefused = 8 };
constexpr uint16_t kGranted = 1;  // flag of a data chunk sent after the receiver's CTS

struct ChunkHeader {
  uint16_t type = kData;
  uint64_t tag = 0, seq = 0, total = 0, offset = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
};

inline void put(uint8_t*& p, const void* v, size_t n) {
  std::memcpy(p, v, n);
  p += n;
}
inline void get(const uint8_t*& p, void* v, size_t n) {
  std::memcpy(v, p, n);
  p += n;
}

inline void encode(const ChunkHeader& h, uint8_t* out) {
  uint8_t* p = out;
  uint32_t magic = kDataMagic, zero32 = 0;
  put(p, &magic, 4);
  put(p, &h.type, 2);
  put(p, &h.flags, 2);
  put(p, &h.tag, 8);
  put(p, &h.seq, 8);
  put(p, &h.total, 8);
  put(p, &h.offset, 8);
  put(p, &h.len, 4);
  put(p, &zero32, 4);
}

// False when the bytes are not a chunk header.
inline bool decode(const uint8_t* in, ChunkHeader& h) {
  const uint8_t* p = in;
  uint32_t magic;
  get(p, &magic, 4);
  get(p, &h.type, 2);
  get(p, &h.flags, 2);
  get(p, &h.tag, 8);
  get(p, &h.seq, 8);
  get(p, &h.total, 8);
  get(p, &h.offset, 8);
  get(p, &h.len, 4);
  const bool control = h.type == kReadyToSend || h.type == kClearToSend || h.type == kReadRequest;
  // A read request's offset is into the owner's region, not into a message.
  return magic == kDataMagic && h.type >= kData && h.type <= kReadRefused && (h.flags & ~kGranted) == 0 &&
         (!control || h.len == 0) && (h.type == kReadRequest || h.offset + h.len <= h.total);
}

struct Hello {
  uint16_t stream = 0;
  uint32_t nsocks = 1;
  int32_t from = 0, to = 0, size = 0;
  uint64_t epoch = 0;
  std::string group;
};

inline std::vector<uint8_t> encode(const Hello& h) {
  std::vector<uint8_t> out(4 + 2 + 2 + 4 + 12 + 8 + 4 + h.group.size());
  uint8_t* p = out.data();
  uint32_t magic = kHelloMagic, glen = static_cast<uint32_t>(h.group.size());
  uint16_t version = kVersion;
  put(p, &magic, 4);
  put(p, &version, 2);
  put(p, &h.stream, 2);
  put(p, &h.nsocks, 4);
  put(p, &h.from, 4);
  put(p, &h.to, 4);
  put(p, &h.size, 4);
  put(p, &h.epoch, 8);
  put(p, &glen, 4);
  put(p, h.group.data(), h.group.size());
  return out;
}

constexpr size_t kHelloFixedBytes = 4 + 2 + 2 + 4 + 12 + 8 + 4;

// Decodes the fixed part of a hello; `groupBytes` is the length of the name that follows.
// Returns why it is not an acceptable hello, or "" (pure: the connector and the fuzzer use it).
inline std::string decodeHelloFixed(const uint8_t* fixed, Hello& h, uint32_t& groupBytes) {
  const uint8_t* p = fixed;
  uint32_t magic;
  uint16_t version;
  get(p, &magic, 4);
  get(p, &version, 2);
  get(p, &h.stream, 2);
  get(p, &h.nsocks, 4);
  get(p, &h.from, 4);
  get(p, &h.to, 4);
  get(p, &h.size, 4);
  get(p, &h.epoch, 8);
  get(p, &groupBytes, 4);
  if (magic != kHelloMagic) return "not an eccl socket-transport hello";
  if (version != kVersion) return "protocol version " + std::to_string(version) + ", expected " + std::to_string(kVersion);
  if (groupBytes > kMaxGroupName) return "group name of " + std::to_string(groupBytes) + " bytes is too long";
  return "";
}

}  // namespace eccl::transport::wire
