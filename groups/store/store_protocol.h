// Frame encoding and decoding for the store protocol. The wire format is documented in
// PROTOCOL.md beside this file. Pure functions and small value types; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eccl::store {

constexpr uint32_t kMagic = 0x31534345;  // "ECS1"
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 12;
constexpr size_t kNonceBytes = 32;
constexpr size_t kMacBytes = 32;

enum class Command : uint8_t {
  kAuth = 1, kPing, kSet, kGet, kCheck, kTryGet, kAdd, kCompareSet,
  kWait, kDelete, kMultiGet, kMultiSet, kAppend, kNumKeys,
};
const char* commandName(uint8_t code);

enum class Status : uint8_t { kOk = 0, kHello = 1, kNotFound = 2, kTimeout = 3, kError = 4 };

// Size limits, in bytes. The frame body limit is derived: one maximal value plus 1 MiB for keys.
// It bounds replies too: a MULTI_GET whose values together exceed it is answered with an error.
struct StoreLimits {
  // A frame's length is 32 bits, so a value may not exceed 4 GiB minus the key allowance.
  static constexpr size_t kKeyAllowance = size_t(1) << 20;
  static constexpr size_t kLargestValueBytes = 0xffffffffu - kKeyAllowance;
  size_t maxKeyBytes = 8 * 1024;
  size_t maxValueBytes = 64 * 1024 * 1024;
  size_t maxBodyBytes() const { return maxValueBytes + kKeyAllowance; }
  // Throws Error(kInvalidArgument) naming the limit that is zero or too large.
  void validate() const;
};

struct FrameHeader {
  uint8_t code = 0;  // command (request) or status (reply)
  uint32_t bodyBytes = 0;
};

// Validates a 12-byte header. Returns the reason when it breaks a rule (bad magic, version,
// reserved bits, body longer than `maxBody`); nullopt when it is fine.
std::optional<std::string> decodeHeader(const uint8_t* bytes, size_t maxBody, FrameHeader& out);

// Appends one frame to `out`: header first, fields added one by one, length patched at finish.
class FrameWriter {
 public:
  FrameWriter(std::vector<uint8_t>& out, uint8_t code);
  FrameWriter& field(std::span<const uint8_t> bytes);
  FrameWriter& field(std::string_view text);
  FrameWriter& u64(uint64_t v);
  void finish();

 private:
  std::vector<uint8_t>& out_;
  size_t start_;
};

// Splits a frame body into fields. Views point into the body; they live as long as it does.
class FieldReader {
 public:
  explicit FieldReader(std::span<const uint8_t> body) : body_(body) {}
  // False at the end of the body. Throws Error(kProtocol) on a truncated field.
  bool next(std::span<const uint8_t>& field);
  // Reads all remaining fields.
  std::vector<std::span<const uint8_t>> rest();
  bool done() const { return pos_ == body_.size(); }

 private:
  std::span<const uint8_t> body_;
  size_t pos_ = 0;
};

// Decodes an 8-byte little-endian integer field; throws Error(kProtocol) naming `what` otherwise.
uint64_t decodeU64(std::span<const uint8_t> field, const char* what);

inline std::string_view asText(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace eccl::store
