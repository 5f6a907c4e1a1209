#include "eplb/expert_weights.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "base/error.h"

namespace eccl::eplb {
namespace {

constexpr std::align_val_t kChunkAlign{4096};

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); }

}  // namespace

void ExpertWeights::ChunkFree::operator()(uint8_t* p) const { ::operator delete[](p, kChunkAlign); }

ExpertWeights::ExpertWeights(ExpertLayout layout, int layers, int slots, int spares)
    : layout_(std::move(layout)), slots_(slots) {
  if (layers <= 0 || slots <= 0)
    invalid("expert weights need positive layers and slots, got " + std::to_string(layers) + " x " + std::to_string(slots));
  if (spares < 0) spares = slots;
  std::lock_guard lock(poolMu_);
  addChunk(layers * slots + spares);
  // The first layers·slots blocks become the slots; the rest are the spare pool.
  std::reverse(freeBlocks_.begin(), freeBlocks_.end());
  for (int l = 0; l < layers; ++l) {
    auto layer = std::make_unique<Layer>();
    layer->maps.row.assign(slots, -1);
    for (int s = 0; s < slots; ++s) {
      layer->blocks.push_back(freeBlocks_.back());
      freeBlocks_.pop_back();
    }
    layers_.push_back(std::move(layer));
  }
}

ExpertWeights::ExpertWeights(ExpertLayout layout, int layers, int slots, std::vector<ExternalTensor> external, int spares)
    : layout_(std::move(layout)), slots_(slots), external_(std::move(external)) {
  if (layers <= 0 || slots <= 0)
    invalid("expert weights need positive layers and slots, got " + std::to_string(layers) + " x " + std::to_string(slots));
  const size_t T = layout_.tensorCount();
  if (external_.size() != size_t(layers) * T)
    invalid("external expert weights: " + std::to_string(external_.size()) + " tensors given, " + std::to_string(layers) +
            " layers x " + std::to_string(T) + " tensors expected");
  for (size_t i = 0; i < external_.size(); ++i) {
    const std::string where = "layer " + std::to_string(i / T) + " tensor '" + layout_.tensors()[i % T].name + "'";
    if (external_[i].base == nullptr) invalid("external expert weights: " + where + " has a null base");
    if (external_[i].slotStride < layout_.tensorBytes(int(i % T)))
      invalid("external expert weights: " + where + " has a slot stride of " + std::to_string(external_[i].slotStride) +
              " bytes, below the tensor's " + std::to_string(layout_.tensorBytes(int(i % T))));
  }
  for (int l = 0; l < layers; ++l) {
    auto layer = std::make_unique<Layer>();
    layer->maps.row.assign(slots, -1);
    layers_.push_back(std::move(layer));
  }
  std::lock_guard lock(poolMu_);
  addChunk(spares < 0 ? slots : std::max(spares, 1));
}

ExpertWeights::~ExpertWeights() = default;

void ExpertWeights::scatter(int layer, int s, const uint8_t* block) {
  for (int t = 0; t < layout_.tensorCount(); ++t)
    std::memcpy(externalTensor(layer, s, t), block + layout_.offset(t), layout_.tensorBytes(t));
}

void ExpertWeights::addChunk(int blocks) {
  const size_t bytes = size_t(blocks) * layout_.blockBytes();
  uint8_t* p = static_cast<uint8_t*>(::operator new[](bytes, kChunkAlign));
  chunks_.emplace_back(p);
  chunkBytes_.push_back(bytes);
  for (int i = 0; i < blocks; ++i) freeBlocks_.push_back(p + size_t(i) * layout_.blockBytes());
}

void ExpertWeights::checkLayer(int layer) const {
  if (layer < 0 || layer >= layers()) invalid("layer " + std::to_string(layer) + " is out of range (0.." + std::to_string(layers() - 1) + ")");
}

ExpertWeights::LayerView::LayerView(const ExpertWeights* owner, int layer)
    : owner_(owner), layer_(layer), lock_(owner->layers_[layer]->mu) {}

const LayerMaps& ExpertWeights::LayerView::maps() const { return owner_->layers_[layer_]->maps; }

const uint8_t* ExpertWeights::LayerView::slot(int s) const {
  if (s < 0 || s >= owner_->slots_) invalid("slot " + std::to_string(s) + " is out of range (0.." + std::to_string(owner_->slots_ - 1) + ")");
  if (owner_->external()) invalid("external expert weights have no block per slot; read its tensors");
  return owner_->layers_[layer_]->blocks[s];
}

const uint8_t* ExpertWeights::LayerView::tensor(int s, int t) const {
  if (t < 0 || t >= owner_->layout_.tensorCount()) invalid("tensor " + std::to_string(t) + " is out of range");
  if (!owner_->external()) return slot(s) + owner_->layout_.offset(t);
  if (s < 0 || s >= owner_->slots_) invalid("slot " + std::to_string(s) + " is out of range (0.." + std::to_string(owner_->slots_ - 1) + ")");
  return owner_->externalTensor(layer_, s, t);
}

uint64_t ExpertWeights::LayerView::checksum(int s) const {
  std::vector<const uint8_t*> tensors;
  for (int t = 0; t < owner_->layout_.tensorCount(); ++t) tensors.push_back(tensor(s, t));
  return expertChecksum(tensors, owner_->layout_);
}

ExpertWeights::LayerView ExpertWeights::read(int layer) const {
  checkLayer(layer);
  return LayerView(this, layer);
}

void ExpertWeights::load(int layer, LayerMaps maps, const std::function<void(int, uint8_t*)>& fill) {
  checkLayer(layer);
  if (maps.row.size() != size_t(slots_))
    invalid("layer " + std::to_string(layer) + ": a row of " + std::to_string(maps.row.size()) + " slots for " + std::to_string(slots_) + " slots");
  Layer& L = *layers_[layer];
  std::unique_lock lock(L.mu);
  if (external()) {
    if (fill) {
      std::vector<uint8_t> block(layout_.blockBytes());
      for (int s = 0; s < slots_; ++s) {
        if (maps.row[s] < 0) continue;
        fill(s, block.data());
        scatter(layer, s, block.data());
      }
    }
  } else {
    if (!fill) invalid("layer " + std::to_string(layer) + ": loading eccl-owned weights needs a fill function");
    for (int s = 0; s < slots_; ++s)
      if (maps.row[s] >= 0) fill(s, L.blocks[s]);
  }
  L.maps = std::move(maps);
}

ExpertWeights::Staging::Staging(Staging&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)),
      layer_(o.layer_),
      slots_(std::move(o.slots_)),
      blocks_(std::move(o.blocks_)),
      pooled_(std::move(o.pooled_)) {}

ExpertWeights::Staging::~Staging() {
  if (owner_ != nullptr) owner_->release(*this);
}

uint8_t* ExpertWeights::Staging::buffer(int s) const {
  auto it = std::find(slots_.begin(), slots_.end(), s);
  if (it == slots_.end()) invalid("layer " + std::to_string(layer_) + ": slot " + std::to_string(s) + " is not staged");
  return blocks_[it - slots_.begin()];
}

ExpertWeights::Staging ExpertWeights::stage(int layer, const std::vector<int>& slots) {
  checkLayer(layer);
  Layer& L = *layers_[layer];
  std::vector<bool> seen(slots_, false);
  for (int s : slots) {
    if (s < 0 || s >= slots_) invalid("layer " + std::to_string(layer) + ": slot " + std::to_string(s) + " is out of range");
    if (seen[s]) invalid("layer " + std::to_string(layer) + ": slot " + std::to_string(s) + " is staged twice");
    seen[s] = true;
  }
  Staging st(this, layer);
  std::unique_lock layerLock(L.mu);
  if (L.staging) {
    st.owner_ = nullptr;
    invalid("layer " + std::to_string(layer) + " already has a change staged");
  }
  std::lock_guard poolLock(poolMu_);
  // An empty slot of eccl's own receives in place (nobody reads it); the engine's slots never do:
  // the staging is a block, the engine's tensors are not.
  auto fromPoolFor = [&](int s) { return external() || L.maps.row[s] >= 0; };
  int pooled = 0;
  for (int s : slots) pooled += fromPoolFor(s);
  if (pooled > static_cast<int>(freeBlocks_.size())) addChunk(std::max(pooled - static_cast<int>(freeBlocks_.size()), slots_));
  for (int s : slots) {
    const bool fromPool = fromPoolFor(s);
    st.slots_.push_back(s);
    st.pooled_.push_back(fromPool);
    if (fromPool) {
      st.blocks_.push_back(freeBlocks_.back());
      freeBlocks_.pop_back();
    } else {
      st.blocks_.push_back(L.blocks[s]);
    }
  }
  L.staging = true;
  return st;
}

void ExpertWeights::release(Staging& st) {
  Layer& L = *layers_[st.layer_];
  {
    std::lock_guard poolLock(poolMu_);
    for (size_t i = 0; i < st.slots_.size(); ++i)
      if (st.pooled_[i]) freeBlocks_.push_back(st.blocks_[i]);
  }
  std::unique_lock layerLock(L.mu);
  L.staging = false;
  st.owner_ = nullptr;
}

void ExpertWeights::commit(Staging&& staged, LayerMaps maps) {
  Staging st(std::move(staged));
  if (st.owner_ != this) invalid("commit of a staging that belongs to other weights or was already used");
  if (maps.row.size() != size_t(slots_))
    invalid("layer " + std::to_string(st.layer_) + ": a row of " + std::to_string(maps.row.size()) + " slots for " + std::to_string(slots_) + " slots");
  Layer& L = *layers_[st.layer_];
  {
    std::unique_lock layerLock(L.mu);
    for (size_t i = 0; i < st.slots_.size(); ++i) {
      if (!st.pooled_[i]) continue;  // received in place
      if (external()) {
        scatter(st.layer_, st.slots_[i], st.blocks_[i]);  // the staged block returns to the pool below
        continue;
      }
      // The old block goes back to the pool through the staging's destructor.
      std::swap(L.blocks[st.slots_[i]], st.blocks_[i]);
    }
    L.maps = std::move(maps);
  }
  // ~st returns the replaced blocks to the pool and clears the layer's staging flag.
}

void ExpertWeights::remap(int layer, LayerMaps maps) {
  checkLayer(layer);
  Layer& L = *layers_[layer];
  std::unique_lock lock(L.mu);
  if (maps.row != L.maps.row) invalid("layer " + std::to_string(layer) + ": remap must keep every slot's expert");
  L.maps = std::move(maps);
}

std::vector<std::span<uint8_t>> ExpertWeights::chunks() const {
  std::lock_guard lock(poolMu_);
  std::vector<std::span<uint8_t>> out;
  // The engine's tensors first (they never change), then the pool's chunks as they are added.
  const int T = layout_.tensorCount();
  for (size_t i = 0; i < external_.size(); ++i)
    out.emplace_back(external_[i].base, size_t(slots_ - 1) * external_[i].slotStride + layout_.tensorBytes(int(i % T)));
  for (size_t i = 0; i < chunks_.size(); ++i) out.emplace_back(chunks_[i].get(), chunkBytes_[i]);
  return out;
}

int ExpertWeights::freeSpares() const {
  std::lock_guard lock(poolMu_);
  return static_cast<int>(freeBlocks_.size());
}

}  // namespace eccl::eplb
