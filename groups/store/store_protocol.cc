#include "groups/store/store_protocol.h"

#include <fmt/format.h>

#include <cstring>

#include "base/error.h"

namespace eccl::store {
namespace {

void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t getU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}

}  // namespace

const char* commandName(uint8_t code) {
  static const char* const names[] = {"?",   "AUTH",        "PING", "SET",    "GET",
                                      "CHECK", "TRY_GET",   "ADD",  "COMPARE_SET", "WAIT",
                                      "DELETE", "MULTI_GET", "MULTI_SET", "APPEND", "NUM_KEYS"};
  return code < std::size(names) ? names[code] : "?";
}

void StoreLimits::validate() const {
  if (maxKeyBytes == 0 || maxKeyBytes > kKeyAllowance)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("store key limit {} bytes is outside 1..{}", maxKeyBytes,
                                                         kKeyAllowance));
  if (maxValueBytes == 0 || maxValueBytes > kLargestValueBytes)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("store value limit {} bytes is outside 1..{} (a frame's "
                                                         "length is 32 bits)", maxValueBytes, kLargestValueBytes));
}

std::optional<std::string> decodeHeader(const uint8_t* p, size_t maxBody, FrameHeader& out) {
  uint32_t magic = getU32(p);
  if (magic != kMagic) return fmt::format("bad magic 0x{:08x}", magic);
  if (p[4] != kVersion) return "unsupported protocol version " + std::to_string(p[4]);
  if (p[6] != 0 || p[7] != 0) return "reserved header bytes are not zero";
  out.code = p[5];
  out.bodyBytes = getU32(p + 8);
  if (out.bodyBytes > maxBody)
    return "frame body of " + std::to_string(out.bodyBytes) + " bytes exceeds the limit of " +
           std::to_string(maxBody);
  return std::nullopt;
}

FrameWriter::FrameWriter(std::vector<uint8_t>& out, uint8_t code) : out_(out), start_(out.size()) {
  out_.resize(start_ + kHeaderBytes);
  uint8_t* h = out_.data() + start_;
  putU32(h, kMagic);
  h[4] = kVersion;
  h[5] = code;
  h[6] = h[7] = 0;
}

FrameWriter& FrameWriter::field(std::span<const uint8_t> bytes) {
  size_t at = out_.size();
  out_.resize(at + 4 + bytes.size());
  putU32(out_.data() + at, static_cast<uint32_t>(bytes.size()));
  if (!bytes.empty()) std::memcpy(out_.data() + at + 4, bytes.data(), bytes.size());
  return *this;
}

FrameWriter& FrameWriter::field(std::string_view text) {
  return field({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

FrameWriter& FrameWriter::u64(uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  return field(std::span<const uint8_t>(b, 8));
}

void FrameWriter::finish() {
  putU32(out_.data() + start_ + 8, static_cast<uint32_t>(out_.size() - start_ - kHeaderBytes));
}

bool FieldReader::next(std::span<const uint8_t>& field) {
  if (pos_ == body_.size()) return false;
  if (body_.size() - pos_ < 4) throw Error(ErrorCode::kProtocol, "truncated field length in frame body");
  uint32_t len = getU32(body_.data() + pos_);
  if (body_.size() - pos_ - 4 < len)
    throw Error(ErrorCode::kProtocol, "field of " + std::to_string(len) + " bytes overruns the frame body");
  field = body_.subspan(pos_ + 4, len);
  pos_ += 4 + len;
  return true;
}

std::vector<std::span<const uint8_t>> FieldReader::rest() {
  std::vector<std::span<const uint8_t>> out;
  std::span<const uint8_t> f;
  while (next(f)) out.push_back(f);
  return out;
}

uint64_t decodeU64(std::span<const uint8_t> f, const char* what) {
  if (f.size() != 8)
    throw Error(ErrorCode::kProtocol, std::string(what) + " must be an 8-byte integer, got " +
                                          std::to_string(f.size()) + " bytes");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(f[i]) << (8 * i);
  return v;
}

}  // namespace eccl::store
