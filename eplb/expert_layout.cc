#include "eplb/expert_layout.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "eplb/digest.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

constexpr size_t kAlign = 64;

size_t alignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

}  // namespace

size_t TensorSpec::bytes() const {
  size_t n = dataTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

ExpertLayout::ExpertLayout(std::vector<TensorSpec> tensors) : tensors_(std::move(tensors)) {
  auto fail = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, "expert layout: " + m); };
  if (tensors_.empty()) fail("an expert needs at least one tensor");
  std::set<std::string> names;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const TensorSpec& t = tensors_[i];
    if (t.name.empty()) fail("tensor " + std::to_string(i) + " has no name");
    if (!names.insert(t.name).second) fail("tensor name '" + t.name + "' appears twice");
    if (t.shape.empty()) fail("tensor '" + t.name + "' has no shape");
    for (int64_t d : t.shape)
      if (d <= 0) fail("tensor '" + t.name + "' has dimension " + std::to_string(d) + " (must be positive)");
    dataTypeSize(t.dtype);  // validates the dtype
    offsets_.push_back(block_);
    block_ = alignUp(block_ + t.bytes());
  }
}

ExpertLayout ExpertLayout::ffn(size_t bytes) {
  constexpr int64_t H = 256;
  const int64_t I = std::max<int64_t>(1, static_cast<int64_t>(bytes / (3 * H * 2)));
  return ExpertLayout({{"w13", {2 * I, H}, DataType::kBFloat16}, {"w2", {H, I}, DataType::kBFloat16}});
}

size_t ExpertLayout::payloadBytes() const {
  size_t n = 0;
  for (auto& t : tensors_) n += t.bytes();
  return n;
}

std::string ExpertLayout::describe() const {
  std::string out;
  for (auto& t : tensors_) {
    if (!out.empty()) out += " + ";
    out += t.name + " " + dataTypeName(t.dtype) + "[";
    for (size_t i = 0; i < t.shape.size(); ++i) {  // appended piecewise: GCC 12 -O3 warns falsely
      if (i) out += ',';                            // (-Wrestrict) on "," + std::string
      out += std::to_string(t.shape[i]);
    }
    out += "]";
  }
  return out;
}

void fillExpert(uint8_t* block, const ExpertLayout& layout, int layer, int expert) {
  // splitmix64 stream seeded by (layer, expert, tensor): cheap, and every expert differs.
  for (int t = 0; t < layout.tensorCount(); ++t) {
    uint64_t x = (uint64_t(layer) << 40) ^ (uint64_t(expert) << 8) ^ uint64_t(t) ^ 0x9e3779b97f4a7c15ull;
    uint8_t* p = block + layout.offset(t);
    const size_t n = layout.tensorBytes(t);
    for (size_t i = 0; i < n; i += 8) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      std::memcpy(p + i, &z, std::min<size_t>(8, n - i));
    }
  }
}

uint64_t expertChecksum(const std::vector<const uint8_t*>& tensors, const ExpertLayout& layout) {
  if (static_cast<int>(tensors.size()) != layout.tensorCount())
    throw Error(ErrorCode::kInvalidArgument, "checksum of " + std::to_string(tensors.size()) + " tensors for a layout of " +
                                                 std::to_string(layout.tensorCount()));
  Sha256 h;
  for (int t = 0; t < layout.tensorCount(); ++t) h.add(tensors[t], layout.tensorBytes(t));
  return leading64(h.finish());
}

uint64_t expertChecksum(const uint8_t* block, const ExpertLayout& layout) {
  std::vector<const uint8_t*> tensors;
  for (int t = 0; t < layout.tensorCount(); ++t) tensors.push_back(block + layout.offset(t));
  return expertChecksum(tensors, layout);
}

uint64_t expectedChecksum(const ExpertLayout& layout, int layer, int expert) {
  std::vector<uint8_t> block(layout.blockBytes());
  fillExpert(block.data(), layout, layer, expert);
  return expertChecksum(block.data(), layout);
}

}  // namespace eccl::eplb
