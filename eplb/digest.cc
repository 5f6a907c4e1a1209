#include "eplb/digest.h"

#include <openssl/evp.h>

#include "base/error.h"

namespace eccl::eplb {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorCode::kSystem, "OpenSSL could not start a SHA-256 digest");
}

Sha256::~Sha256() = default;

Sha256& Sha256::add(const void* data, size_t bytes) {
  if (bytes > 0 && EVP_DigestUpdate(ctx_->md, data, bytes) != 1) throw Error(ErrorCode::kSystem, "SHA-256 update failed");
  return *this;
}

Sha256& Sha256::addInt(int64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(uint64_t(v) >> (8 * i));
  return add(b, sizeof(b));
}

Digest Sha256::finish() {
  Digest d{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx_->md, d.data(), &len) != 1 || len != d.size()) throw Error(ErrorCode::kSystem, "SHA-256 final failed");
  return d;
}

std::string hex(const Digest& d, size_t bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes && i < d.size(); ++i) {
    out += digits[d[i] >> 4];
    out += digits[d[i] & 15];
  }
  return out;
}

uint64_t leading64(const Digest& d) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return v;
}

}  // namespace eccl::eplb
