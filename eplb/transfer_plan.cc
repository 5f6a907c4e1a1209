#include "eplb/transfer_plan.h"

#include <algorithm>
#include <string>

#include "comm/communicator.h"
#include "base/error.h"

namespace eccl::eplb {
namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::kInvalidArgument, "transfer plan: " + m); }

// Ids in [-1, E) and no expert twice on a rank; empty slots allowed.
void checkLayer(const LayerPlacement& p, int E, const char* which, int layer) {
  for (int r = 0; r < p.ranks(); ++r) {
    std::vector<int> slotOf(E, -1);
    for (int s = 0; s < p.slots(); ++s) {
      const int e = p.at(r, s);
      auto where = std::string(which) + " layer " + std::to_string(layer) + " rank " + std::to_string(r) + " slot " + std::to_string(s);
      if (e < -1 || e >= E) invalid(where + ": expert " + std::to_string(e) + " is out of range (-1.." + std::to_string(E - 1) + ")");
      if (e < 0) continue;
      if (slotOf[e] >= 0) invalid(where + ": expert " + std::to_string(e) + " is already in slot " + std::to_string(slotOf[e]));
      slotOf[e] = s;
    }
  }
}

struct Need {
  int dst, dstSlot, expert;
};

}  // namespace

std::vector<int> LayerTransferPlan::changedSlots(int rank) const {
  std::vector<int> out;
  for (auto& t : transfers)
    if (t.dst == rank) out.push_back(t.dstSlot);
  for (auto& c : copies)
    if (c.rank == rank) out.push_back(c.dstSlot);
  std::sort(out.begin(), out.end());
  return out;
}

TransferPlan TransferPlan::build(const Placement& from, const Placement& to, const ExpertLayout& layout) {
  if (from.experts != to.experts || from.ranks != to.ranks || from.slots != to.slots || from.layers.size() != to.layers.size())
    invalid("placements differ in shape: from " + std::to_string(from.layers.size()) + " layers x " + std::to_string(from.experts) +
            " experts on " + std::to_string(from.ranks) + " x " + std::to_string(from.slots) + ", to " +
            std::to_string(to.layers.size()) + " layers x " + std::to_string(to.experts) + " experts on " +
            std::to_string(to.ranks) + " x " + std::to_string(to.slots));
  TransferPlan plan;
  const int N = from.ranks, S = from.slots, E = from.experts, L = static_cast<int>(from.layers.size());
  plan.ranks_ = N;
  plan.slots_ = S;
  plan.experts_ = E;
  plan.tensors_ = layout.tensorCount();
  plan.expertBytes_ = layout.payloadBytes();
  // The tag is ((((layer·E + expert)·T + tensor)·N + src)·N + dst): check it fits.
  long double space = (long double)std::max(L, 1) * E * plan.tensors_ * N * N;
  if (space > (long double)kMaxP2PTag)
    invalid(std::to_string(L) + " layers x " + std::to_string(E) + " experts x " + std::to_string(plan.tensors_) + " tensors x " +
            std::to_string(N) + "^2 ranks do not fit the 62-bit tag space");

  std::vector<uint64_t> sentTotal(N, 0);
  for (int l = 0; l < L; ++l) {
    const LayerPlacement& a = from.layers[l];
    const LayerPlacement& b = to.layers[l];
    if (a.ranks() != N || a.slots() != S || b.ranks() != N || b.slots() != S)
      invalid("layer " + std::to_string(l) + " is not " + std::to_string(N) + " ranks x " + std::to_string(S) + " slots");
    checkLayer(a, E, "from", l);
    checkLayer(b, E, "to", l);
    // holders[e]: ranks holding e in `from`, ascending; slotIn[r][e]: where.
    std::vector<std::vector<int>> holders(E);
    std::vector<std::vector<int>> slotIn(N, std::vector<int>(E, -1));
    for (int r = 0; r < N; ++r)
      for (int s = 0; s < S; ++s)
        if (int e = a.at(r, s); e >= 0) {
          holders[e].push_back(r);
          slotIn[r][e] = s;
        }
    LayerTransferPlan lp;
    std::vector<Need> needs;
    for (int r = 0; r < N; ++r)
      for (int s = 0; s < S; ++s) {
        const int e = b.at(r, s);
        if (e < 0 || a.at(r, s) == e) continue;
        if (slotIn[r][e] >= 0) {
          lp.copies.push_back({l, e, r, slotIn[r][e], s});
          continue;
        }
        if (holders[e].empty())
          invalid("layer " + std::to_string(l) + ": rank " + std::to_string(r) + " slot " + std::to_string(s) + " needs expert " +
                  std::to_string(e) + ", which no rank holds");
        needs.push_back({r, s, e});
        plan.minimumBytes_ += plan.expertBytes_;
      }
    // Most constrained first, so single-holder experts fix their source before choices are made.
    std::vector<size_t> order(needs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      return holders[needs[x].expert].size() < holders[needs[y].expert].size();
    });
    std::vector<uint64_t> sentLayer(N, 0);
    std::vector<ExpertTransfer> chosen(needs.size());
    for (size_t i : order) {
      const Need& n = needs[i];
      int best = -1;
      for (int h : holders[n.expert])
        if (best < 0 || std::tie(sentLayer[h], sentTotal[h]) < std::tie(sentLayer[best], sentTotal[best])) best = h;
      sentLayer[best] += plan.expertBytes_;
      sentTotal[best] += plan.expertBytes_;
      chosen[i] = {l, n.expert, best, slotIn[best][n.expert], n.dst, n.dstSlot};
    }
    lp.transfers = std::move(chosen);  // needs were generated in (dst, dstSlot) order
    plan.layers_.push_back(std::move(lp));
  }

  Sha256 h;
  h.addInt(L).addInt(N).addInt(S).addInt(E).addInt(plan.tensors_).addInt(static_cast<int64_t>(plan.expertBytes_));
  for (int l = 0; l < L; ++l) {
    const auto& lp = plan.layers_[l];
    h.addInt(l).addInt(static_cast<int64_t>(lp.transfers.size())).addInt(static_cast<int64_t>(lp.copies.size()));
    for (auto& t : lp.transfers) h.addInt(t.expert).addInt(t.src).addInt(t.srcSlot).addInt(t.dst).addInt(t.dstSlot);
    for (auto& c : lp.copies) h.addInt(c.expert).addInt(c.rank).addInt(c.srcSlot).addInt(c.dstSlot);
  }
  plan.digest_ = h.finish();
  return plan;
}

bool TransferPlan::empty() const {
  return std::all_of(layers_.begin(), layers_.end(), [](const LayerTransferPlan& l) { return l.empty(); });
}

uint64_t TransferPlan::tag(const ExpertTransfer& t, int tensor) const {
  if (tensor < 0 || tensor >= tensors_) invalid("tensor " + std::to_string(tensor) + " is out of range");
  uint64_t v = uint64_t(t.layer);
  v = v * experts_ + t.expert;
  v = v * tensors_ + tensor;
  v = v * ranks_ + t.src;
  v = v * ranks_ + t.dst;
  return v;
}

TagFields TransferPlan::decodeTag(uint64_t v) const {
  TagFields f{};
  f.dst = static_cast<int>(v % ranks_);
  v /= ranks_;
  f.src = static_cast<int>(v % ranks_);
  v /= ranks_;
  f.tensor = static_cast<int>(v % tensors_);
  v /= tensors_;
  f.expert = static_cast<int>(v % experts_);
  f.layer = static_cast<int>(v / experts_);
  return f;
}

uint64_t TransferPlan::bytesSent(int rank) const {
  uint64_t n = 0;
  for (auto& l : layers_)
    for (auto& t : l.transfers) n += t.src == rank ? expertBytes_ : 0;
  return n;
}

uint64_t TransferPlan::bytesReceived(int rank) const {
  uint64_t n = 0;
  for (auto& l : layers_)
    for (auto& t : l.transfers) n += t.dst == rank ? expertBytes_ : 0;
  return n;
}

uint64_t TransferPlan::networkBytes() const { return uint64_t(transferCount()) * expertBytes_; }

uint64_t TransferPlan::localCopyBytes() const {
  uint64_t n = 0;
  for (auto& l : layers_) n += l.copies.size() * expertBytes_;
  return n;
}

int TransferPlan::transferCount() const {
  size_t n = 0;
  for (auto& l : layers_) n += l.transfers.size();
  return static_cast<int>(n);
}

}  // namespace eccl::eplb
