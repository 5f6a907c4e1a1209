#include "eplb/weight_loader.h"

#include <cstring>

#include "base/error.h"
#include "base/logging.h"

namespace eccl::eplb {
namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, "weight loader: " + m); }

}  // namespace

LayerMaps layerMaps(const LayerPlacement& p, int rank, int experts) {
  return {p.row(rank), p.expertMap(rank, experts), p.log2phy(rank, experts)};
}

void verifyPlanAgreement(Communicator& comm, const TransferPlan& plan) {
  const Digest& mine = plan.digest();
  std::vector<uint8_t> all(mine.size() * comm.size());
  comm.allGather(mine.data(), all.data(), mine.size());
  std::string differ;
  for (int r = 1; r < comm.size(); ++r)
    if (std::memcmp(all.data() + r * mine.size(), all.data(), mine.size()) != 0) {
      Digest d;
      std::memcpy(d.data(), all.data() + r * mine.size(), d.size());
      differ += (differ.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " has " + hex(d, 8);
    }
  if (!differ.empty()) {
    Digest d0;
    std::memcpy(d0.data(), all.data(), d0.size());
    invalid("ranks disagree on the transfer plan: rank 0 has " + hex(d0, 8) + ", " + differ +
            " (every rank must plan from the same placement and loads with a deterministic policy)");
  }
}

WeightLoader::WeightLoader(ExpertWeights& weights, Communicator& comm, std::optional<std::chrono::milliseconds> timeout)
    : weights_(weights), comm_(comm), timeout_(timeout) {
  registerNewChunks();
}

WeightLoader::~WeightLoader() {
  if (inflight_) {
    try {
      inflight_->work.cancel();
    } catch (const std::exception& e) {
      logger().warn("weight loader: cancelling layer {} failed: {}", inflight_->stats.layer, e.what());
    }
    inflight_.reset();
  }
  staged_.clear();
}

void WeightLoader::registerNewChunks() {
  auto chunks = weights_.chunks();
  for (size_t i = regions_.size(); i < chunks.size(); ++i)
    regions_.push_back(comm_.registerMemory(chunks[i].data(), chunks[i].size()));
}

// The registration holding [p, p + n): every slot and staging block lies in one of the chunks.
const transport::MemoryRegion* WeightLoader::regionOf(const void* p, size_t n) const {
  for (const RegisteredMemory& r : regions_)
    if (r.region().contains(p, n)) return &r.region();
  return nullptr;
}

void WeightLoader::start(const TransferPlan& plan, int layer) {
  if (inflight_) invalid("layer " + std::to_string(inflight_->stats.layer) + " is still in flight; wait() for it before starting layer " + std::to_string(layer));
  if (staged_.count(layer)) invalid("layer " + std::to_string(layer) + " is staged and not committed yet");
  if (plan.ranks() != comm_.size())
    invalid("the plan is for " + std::to_string(plan.ranks()) + " ranks, the communicator has " + std::to_string(comm_.size()));
  if (layer < 0 || layer >= plan.layers() || layer >= weights_.layers())
    invalid("layer " + std::to_string(layer) + " is out of range (plan has " + std::to_string(plan.layers()) + ", weights " +
            std::to_string(weights_.layers()) + ")");
  const ExpertLayout& layout = weights_.layout();
  const int me = comm_.rank();
  const LayerTransferPlan& lp = plan.layer(layer);

  InFlight f{Work(), StagedLayer{layer, weights_.stage(layer, lp.changedSlots(me)), {}, plan.experts()}, {},
             std::chrono::steady_clock::now()};
  f.stats.layer = layer;
  registerNewChunks();  // the staging may have grown the pool
  std::vector<P2POp> ops;
  std::vector<std::pair<const uint8_t*, uint8_t*>> copies;  // per tensor
  {
    auto view = weights_.read(layer);
    f.staged.row = view.maps().row;
    auto checkSource = [&](int slot, int expert) {
      if (view.maps().row[slot] != expert)
        invalid("layer " + std::to_string(layer) + ": the plan reads expert " + std::to_string(expert) + " from slot " +
                std::to_string(slot) + ", which holds " + std::to_string(view.maps().row[slot]) + " on rank " + std::to_string(me));
    };
    for (const ExpertTransfer& t : lp.transfers) {
      if (t.src != me && t.dst != me) continue;
      if (t.src == me) checkSource(t.srcSlot, t.expert);
      else f.staged.row[t.dstSlot] = t.expert;
      for (int k = 0; k < layout.tensorCount(); ++k) {
        uint8_t* at = t.src == me ? const_cast<uint8_t*>(view.tensor(t.srcSlot, k))
                                  : f.staged.staging.buffer(t.dstSlot) + layout.offset(k);
        ops.push_back({t.src == me ? P2POp::kSend : P2POp::kRecv, at, layout.tensorBytes(k), t.src == me ? t.dst : t.src,
                       plan.tag(t, k), regionOf(at, layout.tensorBytes(k))});
      }
      (t.src == me ? f.stats.bytesSent : f.stats.bytesReceived) += layout.payloadBytes();
    }
    for (const LocalCopy& c : lp.copies) {
      if (c.rank != me) continue;
      checkSource(c.srcSlot, c.expert);
      f.staged.row[c.dstSlot] = c.expert;
      for (int k = 0; k < layout.tensorCount(); ++k)
        copies.emplace_back(view.tensor(c.srcSlot, k), f.staged.staging.buffer(c.dstSlot) + layout.offset(k));
      f.stats.bytesCopied += layout.payloadBytes();
    }
  }
  // Blocks are not recycled before this layer commits (and the engine's tensors never move), so
  // the pointers outlive the view.
  if (!ops.empty()) f.work = comm_.batchIsendIrecv(ops);
  for (size_t i = 0; i < copies.size(); ++i)
    std::memcpy(copies[i].second, copies[i].first, layout.tensorBytes(int(i % layout.tensorCount())));
  inflight_.emplace(std::move(f));
}

bool WeightLoader::ready() const { return inflight_ && inflight_->work.test(); }

TransferStats WeightLoader::wait() {
  if (!inflight_) invalid("wait() with no layer in flight");
  InFlight f = std::move(*inflight_);
  inflight_.reset();
  try {
    f.work.wait(timeout_);
  } catch (const Error& e) {
    // ~f drops the staging: the committed layer is untouched.
    throw Error(e.code(), "moving experts of layer " + std::to_string(f.stats.layer) + " failed; the layer keeps its old placement: " + e.what());
  }
  f.stats.elapsed = std::chrono::steady_clock::now() - f.started;
  staged_.emplace(f.stats.layer, std::move(f.staged));
  return f.stats;
}

void commitStaged(ExpertWeights& weights, StagedLayer&& staged, const LayerPlacement& next, int rank) {
  const int layer = staged.layer;
  if (rank < 0 || rank >= next.ranks() || next.slots() != weights.slots())
    invalid("commit of layer " + std::to_string(layer) + " for rank " + std::to_string(rank) + " of a " + std::to_string(next.ranks()) +
            " x " + std::to_string(next.slots()) + " placement (weights have " + std::to_string(weights.slots()) + " slots)");
  if (next.row(rank) != staged.row)
    invalid("layer " + std::to_string(layer) + ": the new placement's row for rank " + std::to_string(rank) +
            " does not match the experts that were moved there");
  weights.commit(std::move(staged.staging), layerMaps(next, rank, staged.experts));
}

void WeightLoader::commit(int layer, const LayerPlacement& next, int rank) {
  auto it = staged_.find(layer);
  if (it == staged_.end()) invalid("layer " + std::to_string(layer) + " has nothing staged to commit");
  StagedLayer s = std::move(it->second);
  staged_.erase(it);
  commitStaged(weights_, std::move(s), next, rank);
}

std::vector<StagedLayer> WeightLoader::takeStaged() {
  std::vector<StagedLayer> out;
  for (auto& [l, s] : staged_) out.push_back(std::move(s));
  staged_.clear();
  return out;
}

std::vector<int> WeightLoader::stagedLayers() const {
  std::vector<int> out;
  for (auto& [l, s] : staged_) out.push_back(l);
  return out;
}

}  // namespace eccl::eplb
