/* eccl's EPLB from C (and Python ctypes): expert-parallel load balancing over expert weights the
 * engine owns. Library: libeccl_eplb.so. Same conventions as eccl.h (results, ecclGetLastError).
 *
 * One ecclEplb_t per rank drives the updater from the serving loop, in lockstep on every rank:
 *
 *   for each step:  ecclEplbBeforeForward(e);              may start one layer's expert transfer
 *                   forward ... ecclEplbRecord(e, layer, tokensPerLocalSlot, ...)
 *                   ecclEplbAfterForward(e, &changed);     may commit a layer: its weights (copied
 *                                                           into the engine's tensors) and maps
 *                   if (changed) ecclEplbGetMaps(e, -1, expertMap, log2phy);
 *
 * Expert memory belongs to the engine: for every MoE layer and every tensor of an expert (e.g. w13,
 * w2), one array of `slots` experts with a fixed byte stride between slots (a torch tensor
 * [slots, ...]). eccl registers it with the communicator once, sends from it, receives into its
 * own staging buffers and copies into the engine's tensors only inside ecclEplbAfterForward (or
 * ecclEplbElasticStep), so a forward pass never sees a half-written expert.
 *
 * The configuration is JSON:
 *   {"layers": L, "experts": E, "slots": S,                  S slots per rank; E <= ranks * S
 *    "tensors": [{"name": "w13", "shape": [512, 256], "dtype": "bfloat16"}, ...],   one expert
 *    "policy": "swift" | "default" | "flash",               optional (default "swift")
 *    "heat_steps": 600, "algorithm_steps": 50, "episodes": 10, "nodes": 1,         optional
 *    "min_domains": 1, "domain": "rank" | "node",            optional: each expert in >= min_domains
 *                                                            ranks (nodes) where slots allow it
 *    "export_map_path": "/path/map.json",                    optional: rank 0 writes it per cycle
 *    "initial_map": {expert map, vllm-ascend's format}}      optional: what the tensors hold now;
 *                                                            default: experts in order, then copies
 * dtype names: float32 float16 bfloat16 float64 int8 uint8 int16 int32 int64 bool float8_e4m3
 * float8_e5m2. Not thread-safe: one thread (the serving loop) drives an ecclEplb_t. */
#ifndef ECCL_EPLB_H_
#define ECCL_EPLB_H_

#include "groups/capi/eccl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ecclEplb* ecclEplb_t;

/* tensorBases[l * T + t] = the engine's array of tensor t (of the config's T tensors) for MoE
 * layer l; slotStrides[l * T + t] = bytes from one slot's tensor to the next (>= the tensor's
 * size). The memory must hold the initial map's experts and stay allocated until
 * ecclEplbDestroy. Collective on comm. */
ecclResult_t ecclEplbCreate(ecclComm_t comm, const char* configJson, void* const* tensorBases, const uint64_t* slotStrides,
                            ecclEplb_t* eplb);
/* Tokens routed this step to each local slot: layer >= 0 and count == S, or layer == -1 and
 * count == L * S (layer-major). counts: ecclInt32, ecclInt64, ecclFloat32 or ecclFloat64. */
ecclResult_t ecclEplbRecord(ecclEplb_t eplb, int32_t layer, const void* counts, ecclDataType_t dataType, uint64_t count);
ecclResult_t ecclEplbBeforeForward(ecclEplb_t eplb);
/* *changed (may be NULL) = how many layers this call committed (their maps changed). A failed
 * transfer returns its error with every uncommitted layer in its old placement. */
ecclResult_t ecclEplbAfterForward(ecclEplb_t eplb, int32_t* changed);
/* This rank's routing maps: layer >= 0 fills E entries, layer == -1 fills L * E (layer-major).
 * expertMap[e] = local slot holding logical expert e, or -1; log2phy[e] = the physical replica
 * (rank * S + slot) this rank routes e's tokens to. Either pointer may be NULL. */
ecclResult_t ecclEplbGetMaps(ecclEplb_t eplb, int32_t layer, int32_t* expertMap, int32_t* log2phy);
/* The whole placement the weights hold: L * ranks * S logical expert ids (layer, rank, slot). */
ecclResult_t ecclEplbGetPlacement(ecclEplb_t eplb, int32_t* experts, uint64_t count);
/* The placement as expert-map JSON (vllm-ascend's format), NUL-terminated. When it does not fit,
 * ecclInvalidArgument with *bytes = the size needed (NUL included). */
ecclResult_t ecclEplbExportMap(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes);
/* Moves to the given expert map from the next step on, one layer per step (same call, same step,
 * every rank), e.g. a map a planner computed or one read from a file. */
ecclResult_t ecclEplbApplyMap(ecclEplb_t eplb, const char* mapJson);
/* The report of the cycle that finished at the last ecclEplbAfterForward as JSON (*bytes = 0 and
 * an empty string when none): {"cycle", "imbalance_before", "imbalance_after" (null when not
 * measured, e.g. a placement applied without a load cycle), "layers_changed", "slots_changed",
 * "network_bytes", "minimum_bytes" (the least any plan could move), "bytes_sent",
 * "bytes_received", "transfer_seconds", "policy_seconds"}. Each report is returned once; one that
 * did not fit the buffer is kept for the next call. */
ecclResult_t ecclEplbTakeReport(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes);

/* --- Elastic scale-up/down while serving. Every member of the group's active epoch calls
 * ecclEplbElasticStep between forward steps, the same number of times, with the same plan, until
 * *done = 1; the group keeps serving on ecclElasticComm meanwhile. The first call starts the
 * transition (experts that must move go over the standby or the old group and are staged); the
 * last switches the group and commits. If a step fails (a leaver died, a joiner never came), the
 * transition is over: before the switch the eplb goes on serving the old group; after it the
 * eplb cannot run any more (destroy it). While an eplb runs on an elastic group, the group
 * switches only through this call: ecclElasticSwitch and ecclElasticDestroy refuse (destroy the
 * eplb first), as ecclCommDestroy does for a communicator an eplb runs on. The first call is collective on the old group (it gathers
 * the recent loads the new placement is planned from), and must come between steps (after
 * ecclEplbAfterForward). Until the last, ecclEplbBeforeForward/AfterForward only keep serving
 * (counts are still recorded; no rebalance moves a layer the transition is moving). *left = 1 on a rank that left (destroy its eplb and group);
 * on the others the eplb now runs on the new group with the new numbering, and rebalances with its
 * policy over the next steps. A joining process calls ecclEplbJoin instead. */
ecclResult_t ecclEplbElasticStep(ecclEplb_t eplb, ecclElastic_t group, uint32_t newSize, const int32_t* oldToNew,
                                 uint32_t oldSize, int* done, int* left);
/* --- Surviving a rank crash
 * An engine's weight source: writes expert `expert` of `layer` into tensors[t], one pointer per
 * tensor of the config (its shape and dtype, packed). Returns 0 on success; anything else fails
 * the call naming the layer and expert. */
typedef int (*ecclEplbWeightSourceFn)(void* user, int32_t layer, int32_t expert, void* const* tensors);

/* Writes an eccl checkpoint file (per-expert checksums; see eplb/weight_source.h) at `path` of
 * every expert of every layer of configJson's model, read from source(user, ...). */
ecclResult_t ecclEplbWriteCheckpoint(const char* configJson, const char* path, ecclEplbWeightSourceFn source, void* user);

/* After a rank failure (a step returned ecclConnectionClosed or ecclAborted), on every survivor,
 * between steps: recovers the elastic group this eplb runs on (as ecclElasticRecover), keeps every
 * expert a survivor still holds where it is, reads each expert no survivor holds from the eccl
 * checkpoint at checkpointPath (or, when it is NULL, from source(user, ...)) into the place of a
 * redundant replica, and restarts the updater on the new group; the policy's rebalance (moving
 * experts between survivors) follows over the next steps. Maps change: call ecclEplbGetMaps.
 * Experts are written into the engine's tensors during this call. */
ecclResult_t ecclEplbRecover(ecclEplb_t eplb, ecclElastic_t group, const char* checkpointPath, ecclEplbWeightSourceFn source,
                             void* user, ecclRecoveryInfo* info);
/* The last recovery as JSON: {"failed": [...], "old_to_new": [...], "epoch": E, "rounds": R,
 * "lost": [{"layer", "expert", "rank", "slot"}...], "reloaded": this rank's count,
 * "reloaded_bytes", "source", "agree_seconds", "build_seconds", "restore_seconds"}; *bytes as for
 * ecclEplbExportMap. */
ecclResult_t ecclEplbRecoveryReport(ecclEplb_t eplb, char* buf, size_t capacity, size_t* bytes);

/* A process joining epoch `epoch` as rank newRank of newSize: builds the group with the serving
 * ranks, receives its experts into the engine's tensors, and returns both (blocks until then). */
ecclResult_t ecclEplbJoin(ecclStore_t store, const char* groupName, uint64_t epoch, uint32_t newRank, uint32_t newSize,
                          const char* configJson, void* const* tensorBases, const uint64_t* slotStrides,
                          ecclElastic_t* group, ecclEplb_t* eplb);
ecclResult_t ecclEplbDestroy(ecclEplb_t eplb);

/* The shape an eplb runs with: the group it is on now (ranks, this rank) and the config's. */
typedef struct {
  int32_t layers, experts, slots; /* slots per rank */
  int32_t ranks, rank;
} ecclEplbInfo;
ecclResult_t ecclEplbGetInfo(ecclEplb_t eplb, ecclEplbInfo* info);

/* A placement without an updater: {"policy": ..., "ranks": N, "slots": S, "nodes": 1,
 * "min_domains": 1, "domain": "rank", "loads": {loads JSON}, "current_map": {expert map} (optional)} -> the new expert map JSON,
 * NUL-terminated in buf (*bytes as for ecclEplbExportMap). */
ecclResult_t ecclEplbPlan(const char* requestJson, char* buf, size_t capacity, size_t* bytes);

#ifdef __cplusplus
}
#endif

#endif /* ECCL_EPLB_H_ */
