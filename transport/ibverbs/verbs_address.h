// What a verbs transport publishes for its peers (the AddressBlob): its host, its side channel,
// its port's GID, LID and MTU, and the number of the queue pair it made for each rank (so each
// pair connects its two queue pairs without another exchange).
// Wire form: u32 magic "ECIB", u16 version, u16 0, string host id, string side channel,
// 16-byte GID, u16 LID, u8 MTU (ibv_mtu), u8 RoCE, u64 credit table address, u32 its key,
// u32 eager limit, u32 credit limit, u32 first packet sequence number, u8 read depth (as
// responder), u32 rank count, then u32 QP number per rank (0 for its own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace eccl::transport::verbs {

struct VerbsAddress {
  std::string hostId;
  std::string sideChannel;  // "host:port"
  uint8_t gid[16] = {};
  uint16_t lid = 0;
  uint8_t mtu = 0;  // ibv_mtu
  bool roce = false;
  uint64_t creditAddress = 0;  // where peers RDMA-WRITE the credits they return (u64 per rank)
  uint32_t creditKey = 0;
  // What both sides of a pair must agree on: receive buffers are this big (eager limit) and this
  // many per peer (credit limit); the queue pairs' packet numbers start here; this many reads
  // may be in flight against it.
  uint32_t eagerBytes = 0, creditLimit = 0, psn = 0;
  uint8_t readDepth = 0;
  std::vector<uint32_t> qpn;  // by rank

  AddressBlob encode() const;
  // Throws Error(kProtocol) naming `whose` when the blob is not a verbs address.
  static VerbsAddress decode(const AddressBlob& blob, const std::string& whose);
};

}  // namespace eccl::transport::verbs
