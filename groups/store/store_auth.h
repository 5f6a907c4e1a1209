// Shared-secret authentication for the store: HMAC-SHA256 over a server nonce.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>

#include "groups/store/store_protocol.h"

namespace eccl::store {

using Nonce = std::array<uint8_t, kNonceBytes>;
using Mac = std::array<uint8_t, kMacBytes>;

Nonce randomNonce();
Mac computeMac(const std::string& token, const Nonce& nonce);
// Constant-time comparison.
bool macEquals(std::span<const uint8_t> a, const Mac& b);

// The token to use: `explicitToken` if given; else the contents of `tokenFile` if given; else
// $ECCL_STORE_TOKEN; else the contents of the file named by $ECCL_STORE_TOKEN_FILE; else none.
// Trailing newlines of a file are dropped. Throws Error(kInvalidArgument) naming the file when
// it cannot be read or is empty.
std::optional<std::string> resolveToken(const std::optional<std::string>& explicitToken,
                                        const std::optional<std::string>& tokenFile = std::nullopt);

}  // namespace eccl::store
