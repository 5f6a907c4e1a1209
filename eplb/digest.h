// SHA-256 (OpenSSL) for what ranks must agree on or verify: transfer-plan digests and expert
// checksums. Incremental; not thread-safe (one per thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace eccl::eplb {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& add(const void* data, size_t bytes);
  Sha256& addInt(int64_t v);  // fixed 8-byte little-endian encoding
  Digest finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string hex(const Digest& d, size_t bytes = 32);
// The first 8 bytes of a digest as a number: a compact checksum for logs and summaries.
uint64_t leading64(const Digest& d);

}  // namespace eccl::eplb
