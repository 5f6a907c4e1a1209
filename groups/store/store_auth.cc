#include "groups/store/store_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "base/env.h"
#include "base/error.h"

namespace eccl::store {

Nonce randomNonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1)
    throw Error(ErrorCode::kSystem, "RAND_bytes failed to produce a store nonce");
  return n;
}

Mac computeMac(const std::string& token, const Nonce& nonce) {
  Mac mac{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()), nonce.data(), nonce.size(),
           mac.data(), &len) == nullptr || len != mac.size())
    throw Error(ErrorCode::kSystem, "HMAC-SHA256 failed");
  return mac;
}

bool macEquals(std::span<const uint8_t> a, const Mac& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), b.size()) == 0;
}

namespace {

std::string readTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kInvalidArgument, "cannot read store token file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) throw Error(ErrorCode::kInvalidArgument, "store token file '" + path + "' is empty");
  return token;
}

}  // namespace

std::optional<std::string> resolveToken(const std::optional<std::string>& explicitToken,
                                        const std::optional<std::string>& tokenFile) {
  if (explicitToken) {
    if (explicitToken->empty()) throw Error(ErrorCode::kInvalidArgument, "store token is empty");
    return explicitToken;
  }
  if (tokenFile) return readTokenFile(*tokenFile);
  if (auto t = envString("ECCL_STORE_TOKEN")) return t;
  if (auto f = envString("ECCL_STORE_TOKEN_FILE")) return readTokenFile(*f);
  return std::nullopt;
}

}  // namespace eccl::store
