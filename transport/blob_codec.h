// Writing and reading the small binary blobs transports publish (addresses, handshakes): fixed
// little-endian-host integers and length-prefixed byte strings. A reader that runs short or meets
// an oversized field throws Error(kProtocol) naming whose blob it is and what kind.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"

namespace eccl::transport {

class BlobWriter {
 public:
  template <class T>
  BlobWriter& put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
    return *this;
  }
  BlobWriter& bytes(const void* data, size_t n) {
    put(static_cast<uint32_t>(n));
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
    return *this;
  }
  BlobWriter& str(const std::string& s) { return bytes(s.data(), s.size()); }
  template <class B>
  BlobWriter& bytes(const B& b) { return bytes(b.data(), b.size()); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class BlobReader {
 public:
  // `whose`: "rank 3"; `what`: "a shared-memory address" — both only for errors.
  BlobReader(const std::vector<uint8_t>& in, std::string whose, std::string what)
      : in_(in), whose_(std::move(whose)), what_(std::move(what)) {}
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::vector<uint8_t> bytes(size_t maxBytes = 1 << 16) {
    const auto n = get<uint32_t>();
    if (n > maxBytes) fail("with a " + std::to_string(n) + "-byte field");
    need(n);
    std::vector<uint8_t> v(in_.begin() + static_cast<ptrdiff_t>(at_), in_.begin() + static_cast<ptrdiff_t>(at_ + n));
    at_ += n;
    return v;
  }
  std::string str() {
    auto v = bytes();
    return std::string(v.begin(), v.end());
  }
  bool done() const { return at_ == in_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::kProtocol, whose_ + " published " + what_ + " " + why);
  }

 private:
  void need(size_t n) const {
    if (in_.size() - at_ < n) fail("that is truncated (" + std::to_string(in_.size()) + " bytes)");
  }
  const std::vector<uint8_t>& in_;
  std::string whose_, what_;
  size_t at_ = 0;
};

}  // namespace eccl::transport
