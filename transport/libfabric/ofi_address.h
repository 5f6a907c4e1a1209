// What an OFI transport publishes for its peers (the AddressBlob): the host it runs on (so peers
// on the same host pick shared memory), its side-channel socket address, and the name of each of
// its endpoints by provider.
// Wire form: u32 magic "ECOF", u16 version, u16 endpoint count, string host id, string side
// channel, then per endpoint: string provider, string name (each string: u32 length + bytes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace eccl::transport::ofi {

struct OfiAddress {
  std::string hostId;
  std::string sideChannel;  // "host:port"
  struct Named {
    std::string provider;
    std::vector<uint8_t> name;
  };
  std::vector<Named> endpoints;

  AddressBlob encode() const;
  // Throws Error(kProtocol) naming `whose` when the blob is not an OFI address.
  static OfiAddress decode(const AddressBlob& blob, const std::string& whose);
  const Named* find(const std::string& provider) const;
};

}  // namespace eccl::transport::ofi
