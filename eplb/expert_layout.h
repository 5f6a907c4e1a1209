// What one expert's weights look like on a rank: a list of named tensors (e.g. w13, w2, scales)
// with shape and dtype, laid out back to back in one block (each tensor 64-byte aligned).
// Every slot of every layer holds one such block. Value type; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/types.h"

namespace eccl::eplb {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DataType dtype = DataType::kBFloat16;
  size_t bytes() const;  // product(shape) · element size
};

class ExpertLayout {
 public:
  // Throws Error(kInvalidArgument) naming the tensor for: no tensors, an empty name, a name
  // twice, a non-positive dimension.
  explicit ExpertLayout(std::vector<TensorSpec> tensors);

  // An unquantised MoE FFN expert of about `bytes` bytes in bf16: w13 [2·I, H] and w2 [H, I]
  // with H = 256, I chosen so the total is the largest multiple of 3·H·2 bytes ≤ `bytes` (at
  // least one row). For demos and benchmarks that only care about size.
  static ExpertLayout ffn(size_t bytes);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  int tensorCount() const { return static_cast<int>(tensors_.size()); }
  size_t offset(int tensor) const { return offsets_.at(tensor); }
  size_t tensorBytes(int tensor) const { return tensors_.at(tensor).bytes(); }
  size_t payloadBytes() const;  // Σ tensor bytes: what moves over the wire per expert
  size_t blockBytes() const { return block_; }  // one slot's footprint, alignment included
  std::string describe() const;                 // "w13 bf16[512,256] + w2 bf16[256,256]"

 private:
  std::vector<TensorSpec> tensors_;
  std::vector<size_t> offsets_;
  size_t block_ = 0;
};

// Deterministic content for (layer, expert): what a checkpoint would load. Used to initialise
// weights in the demo, tests and benchmarks and to verify them afterwards.
void fillExpert(uint8_t* block, const ExpertLayout& layout, int layer, int expert);
// SHA-256-based checksum of an expert's tensors (alignment padding excluded).
uint64_t expertChecksum(const uint8_t* block, const ExpertLayout& layout);
// The same checksum over tensors that are not in one block (tensors[t] = tensor t's bytes).
uint64_t expertChecksum(const std::vector<const uint8_t*>& tensors, const ExpertLayout& layout);
// The checksum fillExpert's content has.
uint64_t expectedChecksum(const ExpertLayout& layout, int layer, int expert);

}  // namespace eccl::eplb
