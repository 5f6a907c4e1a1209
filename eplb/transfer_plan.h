// How to get from one placement to another: per layer, which expert replicas each rank receives
// (and from whom) and which it copies locally. Every rank builds the same plan from the same two
// placements (the construction is deterministic and rank-independent); digest() lets ranks
// check that they agree before any byte moves.
//
// Rules, per layer and per (rank, slot) whose expert in `to` is not already there in `from`:
//  - the rank holds that expert in another slot: a local copy (no network bytes);
//  - otherwise one transfer from a holder in `from`, chosen so bytes sent per rank are balanced
//    (most constrained experts first, each to the least-loaded holder; ties to the lower rank).
// Every receive targets its own (layer, rank, slot), so no two receives share a buffer, and each
// (layer, expert, tensor, src, dst) has its own tag: a mixed-radix number, so tags are unique and
// decodable.
//
// Both placements are in the rank numbering of the communicator that executes the plan; a slot
// may be empty (-1) in either: empty in `from` = holds nothing (a new rank), empty in `to` =
// nothing needed. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include "eplb/digest.h"
#include "eplb/expert_layout.h"
#include "eplb/placement.h"

namespace eccl::eplb {

struct ExpertTransfer {
  int layer, expert;
  int src, srcSlot;
  int dst, dstSlot;
  bool operator==(const ExpertTransfer&) const = default;
};

struct LocalCopy {
  int layer, expert;
  int rank, srcSlot, dstSlot;
  bool operator==(const LocalCopy&) const = default;
};

struct LayerTransferPlan {
  std::vector<ExpertTransfer> transfers;  // in (dst, dstSlot) order
  std::vector<LocalCopy> copies;          // in (rank, dstSlot) order
  bool empty() const { return transfers.empty() && copies.empty(); }
  // Slots of `rank` that change in this layer (received or copied), ascending.
  std::vector<int> changedSlots(int rank) const;
};

struct TagFields {
  int layer, expert, tensor, src, dst;
  bool operator==(const TagFields&) const = default;
};

class TransferPlan {
 public:
  // `from` and `to`: same expert count, ranks, slots and layers; ids in [-1, E); no expert twice
  // on a rank. Throws Error(kInvalidArgument) naming the layer (and rank, slot, expert) when they
  // are not, or when `to` needs an expert nobody holds in `from`, or when the tag space (62 bits)
  // is too small for layers·E·tensors·ranks².
  static TransferPlan build(const Placement& from, const Placement& to, const ExpertLayout& layout);

  int layers() const { return static_cast<int>(layers_.size()); }
  int ranks() const { return ranks_; }
  int experts() const { return experts_; }
  const LayerTransferPlan& layer(int l) const { return layers_.at(l); }
  bool empty() const;

  uint64_t tag(const ExpertTransfer& t, int tensor) const;
  TagFields decodeTag(uint64_t tag) const;

  // Bytes over the network (tensor payload only; local copies excluded).
  uint64_t bytesSent(int rank) const;
  uint64_t bytesReceived(int rank) const;
  uint64_t networkBytes() const;
  // Σ over (layer, rank, expert) that `to` places on a rank not holding it in `from`: the least
  // any plan must move. build() always meets it; computed independently as a check.
  uint64_t minimumNetworkBytes() const { return minimumBytes_; }
  uint64_t localCopyBytes() const;
  int transferCount() const;

  // SHA-256 over the placements' shape and every transfer and copy, in order.
  const Digest& digest() const { return digest_; }

 private:
  int ranks_ = 0, slots_ = 0, experts_ = 0, tensors_ = 0;
  uint64_t expertBytes_ = 0;
  uint64_t minimumBytes_ = 0;
  std::vector<LayerTransferPlan> layers_;
  Digest digest_{};
};

}  // namespace eccl::eplb
