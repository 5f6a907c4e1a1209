// The expert weights of one rank: for every MoE layer, `slots` blocks (one expert each, laid out
// by an ExpertLayout), allocated once, plus a pool of spare blocks that incoming experts are
// received into. A layer's slot contents, expert_map and log2phy change only by commit(), which
// swaps them together under the layer's lock: a reader holding a LayerView sees one version,
// never a mix, and a staged change that is discarded leaves the layer as it was.
//
// Memory: layers·slots + spares blocks of layout.blockBytes(), in page-aligned chunks that never
// move (chunks() lists them for transport registration). The pool grows by a chunk when a
// staging needs more spares than it holds (elastic transitions stage many layers at once).
//
// Or over memory the engine owns (ExternalTensor): the slots stay where the engine put them, only
// the spare pool is eccl's, and a commit copies the staged experts into the engine's tensors
// (under the layer's write lock) instead of swapping blocks.
//
// Thread-safety: any number of readers (read()) and one writer (the weight loader) at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <vector>

#include "eplb/expert_layout.h"

namespace eccl::eplb {

// What routing needs for one layer on this rank.
struct LayerMaps {
  std::vector<int> row;        // slot -> logical expert, -1 = empty (size slots)
  std::vector<int> expertMap;  // logical expert -> local slot or -1 (size E)
  std::vector<int> log2phy;    // logical expert -> physical replica to route to (size E)
};

// One tensor of the layout for every slot of one layer, in memory the engine owns: slot s's copy
// at base + s · slotStride (a [slots, ...] array; slotStride >= the tensor's bytes).
struct ExternalTensor {
  uint8_t* base = nullptr;
  size_t slotStride = 0;
};

class ExpertWeights {
 public:
  // spares < 0: one layer's worth (= slots). Throws Error(kInvalidArgument) for non-positive
  // layers or slots.
  ExpertWeights(ExpertLayout layout, int layers, int slots, int spares = -1);
  // Over the engine's memory: external[l · T + t] is tensor t of layer l (T = layout tensors). The
  // memory must outlive this object; it is never freed or moved. It holds the experts the maps
  // set by load() (with a null fill) say. Throws Error(kInvalidArgument) naming the layer and
  // tensor for a wrong count, a null base or a stride below the tensor's size.
  ExpertWeights(ExpertLayout layout, int layers, int slots, std::vector<ExternalTensor> external, int spares = -1);
  bool external() const { return !external_.empty(); }
  ~ExpertWeights();
  ExpertWeights(const ExpertWeights&) = delete;
  ExpertWeights& operator=(const ExpertWeights&) = delete;

  const ExpertLayout& layout() const { return layout_; }
  int layers() const { return static_cast<int>(layers_.size()); }
  int slots() const { return slots_; }

  // A consistent, read-only view of one layer; holds the layer's shared lock while it lives, so
  // keep it for one forward pass, not longer (a commit waits for it).
  class LayerView {
   public:
    const LayerMaps& maps() const;
    // Slot s's block (internal weights only: throws Error(kInvalidArgument) for external ones,
    // whose slot is not one block).
    const uint8_t* slot(int s) const;
    // Tensor t of slot s, for both kinds.
    const uint8_t* tensor(int s, int t) const;
    // expertChecksum of slot s's tensors.
    uint64_t checksum(int s) const;

   private:
    friend class ExpertWeights;
    LayerView(const ExpertWeights* owner, int layer);
    const ExpertWeights* owner_;
    int layer_;
    std::shared_lock<std::shared_mutex> lock_;
  };
  LayerView read(int layer) const;

  // Sets a layer's maps and fills every non-empty slot with fill(slot, block) — the initial
  // load from a checkpoint (external weights: a block that is then copied into the engine's
  // tensors; a null fill sets only the maps). Takes the layer's write lock.
  void load(int layer, LayerMaps maps, const std::function<void(int slot, uint8_t* block)>& fill);

  // Buffers for the new contents of some slots of one layer. Move-only; unless committed, its
  // buffers go back to the pool when it is destroyed, and the layer is unchanged.
  class Staging {
   public:
    Staging(Staging&& o) noexcept;
    Staging& operator=(Staging&&) = delete;
    ~Staging();
    int layer() const { return layer_; }
    // The buffer receiving slot `s`'s new content. Throws for a slot not staged.
    uint8_t* buffer(int s) const;

   private:
    friend class ExpertWeights;
    Staging(ExpertWeights* owner, int layer) : owner_(owner), layer_(layer) {}
    ExpertWeights* owner_;
    int layer_;
    std::vector<int> slots_;
    std::vector<uint8_t*> blocks_;
    std::vector<bool> pooled_;  // false: the slot was empty and receives in place
  };
  // A staging for `slots` of `layer`: a spare per slot, or the slot's own block when the
  // committed layer leaves it empty (nobody reads an empty slot). Throws Error(kInvalidArgument)
  // for a slot out of range or twice, or when the layer already has a staging open.
  Staging stage(int layer, const std::vector<int>& slots);
  // Atomically: the staged blocks become the slots' contents and `maps` the layer's maps. The
  // replaced blocks return to the pool.
  void commit(Staging&& staged, LayerMaps maps);
  // Replaces only the maps (the same experts in the same slots, routed differently — e.g. after
  // the group was renumbered). Throws Error(kInvalidArgument) if maps.row differs from the row.
  void remap(int layer, LayerMaps maps);

  // Every memory chunk allocated so far (never moved or freed before destruction).
  std::vector<std::span<uint8_t>> chunks() const;
  int freeSpares() const;

 private:
  struct Layer {
    mutable std::shared_mutex mu;
    LayerMaps maps;
    std::vector<uint8_t*> blocks;  // slot -> its block
    bool staging = false;
  };
  struct ChunkFree {
    void operator()(uint8_t* p) const;
  };
  void addChunk(int blocks);  // poolMu_ held
  uint8_t* externalTensor(int layer, int s, int t) const {
    const auto& x = external_[size_t(layer) * layout_.tensorCount() + t];
    return x.base + size_t(s) * x.slotStride;
  }
  void scatter(int layer, int s, const uint8_t* block);  // a block into the engine's tensors
  void release(Staging& s);
  void checkLayer(int layer) const;

  ExpertLayout layout_;
  int slots_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<ExternalTensor> external_;  // empty for internal weights
  mutable std::mutex poolMu_;
  std::vector<std::unique_ptr<uint8_t[], ChunkFree>> chunks_;
  std::vector<size_t> chunkBytes_;
  std::vector<uint8_t*> freeBlocks_;
};

}  // namespace eccl::eplb
