// What a shared-memory transport publishes for its peers (the AddressBlob): its host (peers on
// another host cannot use it), its side channel, and where its segment is (process, fd, size).
// Wire form: u32 magic "ECSH", u32 version, string host id, string side channel, i32 pid,
// i32 fd, u64 segment bytes, u64 ring bytes, u64 probe address, u64 pool bytes, u64 chunk bytes
// (strings: u32 length + bytes).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "transport/transport.h"

namespace eccl::transport::shm {

struct ShmAddress {
  std::string hostId;
  std::string sideChannel;  // "host:port"
  pid_t pid = 0;
  int fd = -1;
  uint64_t segmentBytes = 0;
  uint64_t ringBytes = 0;
  // The owner's address of its segment header: a peer reads its magic by cross-memory attach at
  // connect time, to find out early whether it may read this process's memory.
  uint64_t probeAddress = 0;
  // Its chunk pool (see shm_layout.h): poolBytes / chunkBytes slots; 0 = none (it sends only by
  // cross-memory attach).
  uint64_t poolBytes = 0;
  uint64_t chunkBytes = 0;

  AddressBlob encode() const;
  // Throws Error(kProtocol) naming `whose` when the blob is not a shared-memory address.
  static ShmAddress decode(const AddressBlob& blob, const std::string& whose);
};

}  // namespace eccl::transport::shm
