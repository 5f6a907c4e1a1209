// Executes a TransferPlan on one rank, layer by layer, over a communicator: start(layer) posts
// this rank's sends and receives as one batch_isend_irecv (and makes its local copies) and
// returns at once, so the transfer overlaps the next forward pass; wait() collects it into a
// staging; commit() makes it visible (weights, expert_map and log2phy swap together under the
// layer's lock). A failed transfer drops the staging: the committed layer stays as it was.
//
// One layer is in flight at a time; any number may be staged (waited, not yet committed), which
// is how an elastic transition moves every layer first and commits them all at the switch.
// Expert memory is registered with the communicator once (and again only for chunks
// the spare pool adds later). Not thread-safe: one thread (the serving loop) drives it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "comm/communicator.h"
#include "eplb/expert_weights.h"
#include "eplb/transfer_plan.h"

namespace eccl::eplb {

// The maps a rank routes by, for its rank in a layer placement.
LayerMaps layerMaps(const LayerPlacement& p, int rank, int experts);

// Every rank of `comm` must call it with its plan: throws Error(kInvalidArgument) naming the
// ranks whose plan digest differs from rank 0's (a policy that is not deterministic, or ranks
// that planned from different loads or placements). Collective on `comm`.
void verifyPlanAgreement(Communicator& comm, const TransferPlan& plan);

// A layer whose experts have arrived but are not visible yet (see WeightLoader::takeStaged).
struct StagedLayer {
  int layer;
  ExpertWeights::Staging staging;
  std::vector<int> row;  // the layer's row once committed
  int experts;
};
// Makes `staged` visible in `weights` (see WeightLoader::commit).
void commitStaged(ExpertWeights& weights, StagedLayer&& staged, const LayerPlacement& next, int rank);

struct TransferStats {
  int layer = -1;
  uint64_t bytesSent = 0, bytesReceived = 0, bytesCopied = 0;
  std::chrono::duration<double> elapsed{0};  // start() to the end of wait()
};

class WeightLoader {
 public:
  // `timeout`: for each wait(); nullopt = the communicator's timeout.
  WeightLoader(ExpertWeights& weights, Communicator& comm, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Cancels a transfer in flight and drops staged layers; never throws.
  ~WeightLoader();
  WeightLoader(const WeightLoader&) = delete;
  WeightLoader& operator=(const WeightLoader&) = delete;

  // Throws Error(kInvalidArgument) when a layer is in flight or `layer` is already staged, or
  // the plan is for a different group size or expert layout than this loader's.
  void start(const TransferPlan& plan, int layer);
  bool inFlight() const { return inflight_.has_value(); }
  // True when the in-flight transfer has finished (wait() will not block). Never blocks.
  bool ready() const;
  // Waits for the in-flight layer. On failure its staging is dropped, the layer stays as it was,
  // and the error (naming the layer, the peer rank and address) is rethrown.
  TransferStats wait();
  // Makes staged `layer` the one readers see. `next` is the layer's new placement and `rank` this
  // rank's rank in it (which may differ from the communicator's, e.g. across a switch). Throws
  // Error(kInvalidArgument) if `next` does not put the staged experts where they were received.
  void commit(int layer, const LayerPlacement& next, int rank);
  TransferStats finish(int layer, const LayerPlacement& next, int rank) {
    TransferStats s = wait();
    commit(layer, next, rank);
    return s;
  }
  std::vector<int> stagedLayers() const;
  void discardStaged() { staged_.clear(); }
  // Hands the staged layers over, to commit after this loader (and its communicator) are gone —
  // an elastic switch destroys the group the experts moved over.
  std::vector<StagedLayer> takeStaged();

 private:
  struct InFlight {
    Work work;
    StagedLayer staged;
    TransferStats stats;
    std::chrono::steady_clock::time_point started;
  };
  void registerNewChunks();

  ExpertWeights& weights_;
  Communicator& comm_;
  std::optional<std::chrono::milliseconds> timeout_;
  const transport::MemoryRegion* regionOf(const void* p, size_t n) const;
  std::vector<RegisteredMemory> regions_;  // one per chunk of weights_.chunks(), in order
  std::optional<InFlight> inflight_;
  std::map<int, StagedLayer> staged_;
};

}  // namespace eccl::eplb
