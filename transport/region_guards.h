// The guard words a transport publishes for one-sided reads of its regions (see RemoteRegion):
// a table of 64-bit words that peers read remotely; slot i holds the key of the registration
// using it while that registration lives and 0 once it is gone. A reader checks the word before
// and after the data, so a region deregistered meanwhile fails its read instead of handing back
// freed memory. Shared by the transports whose reads the provider or device does not check
// against deregistration by itself (libfabric shm) or must not hit a dead key (verbs).
// Not thread-safe: the owner calls it under its own lock (peers only read the words).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace eccl::transport {

class RegionGuards {
 public:
  static constexpr size_t kSlots = 4096;  // regions registered at once, per transport

  RegionGuards();
  // The table, to register for remote reads and to publish (its address).
  uint64_t* words() const { return words_.get(); }
  static constexpr size_t bytes() { return kSlots * sizeof(uint64_t); }
  // A slot holding `key` from now on. Throws Error(kInvalidArgument) naming `who` when every
  // slot is taken.
  size_t take(uint64_t key, const std::string& who);
  // Clears the slot (a read that overlaps from here on sees the word change), then frees it.
  void release(size_t slot);

 private:
  std::unique_ptr<uint64_t[]> words_;
  std::vector<size_t> free_;
};

}  // namespace eccl::transport
