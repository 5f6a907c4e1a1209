"""EPLB (expert-parallel load balancing) over expert weights the engine owns.

The engine keeps its expert tensors; eccl registers them once, moves experts between ranks in
the background and copies arrivals into them only inside :meth:`Eplb.after_forward` (or
:meth:`Eplb.elastic_step`), so a forward pass never sees a half-written expert. Each rank drives
its :class:`Eplb` from the serving loop, in lockstep with the other ranks::

    eplb.before_forward()                      # may start one layer's transfer
    ... forward; eplb.record(layer, tokens_per_local_slot) ...
    if eplb.after_forward():                   # layers committed: their maps changed
        log2phy = eplb.log2phy()               # re-read the routing table

Engine tensors: for every expert tensor (e.g. "w13", "w2") one CPU tensor per MoE layer, shaped
``[slots, *expert_shape]``, each slot's expert contiguous (``t[0].is_contiguous()``); slots may
be spaced by any byte stride (``t.stride(0)``). They must hold the initial map's experts and stay
allocated (this object keeps references) until :meth:`Eplb.destroy`.

Not thread-safe: one thread (the serving loop) drives an Eplb. Errors raise :mod:`eccl.errors`
exceptions; a failed transfer leaves every uncommitted layer in its old placement.
"""
from __future__ import annotations

import ctypes
import json
import math
import sys
from ctypes import byref, c_int, c_int32, c_size_t, c_uint64, c_void_p
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _lib
from .buffers import as_buffer
from .comm import Communicator, _rank_arg
from .dtypes import BY_NAME, ITEM_SIZE, NAMES, DataType, numpy_table, torch_table
from .elastic import ElasticGroup, RecoveryInfo, _plan
from .errors import InvalidArgument
from .store import TcpStore
from ._resource import Resource

Tensors = Union[Dict[str, Sequence[Any]], Sequence[Sequence[Any]]]
MapLike = Union[str, Dict[str, Any]]

_COUNT_TYPES = (DataType.INT32, DataType.INT64, DataType.FLOAT32, DataType.FLOAT64)


def _grow_string(fn, args: tuple, capacity: int) -> str:
    """Calls ``fn(*args, buf, capacity, &bytes)`` and returns the NUL-terminated text; when the
    C side says the buffer is too small (InvalidArgument with a bigger *bytes), retries bigger."""
    while True:
        buf = ctypes.create_string_buffer(capacity)
        n = c_size_t(0)
        try:
            fn(*args, buf, capacity, byref(n))
        except InvalidArgument:
            if n.value > capacity:
                capacity = n.value
                continue
            raise
        return buf.value.decode("utf-8")


def _map_text(m: MapLike, name: str) -> str:
    if isinstance(m, str):
        return m
    if isinstance(m, dict):
        return json.dumps(m)
    raise InvalidArgument("'%s' must be an expert map as a dict or a JSON string, not %s" % (name, type(m).__name__))


def _map_object(m: MapLike, name: str) -> Dict[str, Any]:
    if isinstance(m, dict):
        return m
    try:
        return json.loads(_map_text(m, name))
    except json.JSONDecodeError as e:
        raise InvalidArgument("'%s' is not valid JSON: %s" % (name, e)) from None


class _EngineTensors:
    """The engine's expert tensors, checked, as the C API's tensorBases/slotStrides arrays
    (layer-major: index l * T + t) plus the config's "tensors" list. Holds the references."""

    def __init__(self, layers: int, slots: int, tensors: Tensors):
        if isinstance(tensors, dict):
            named = list(tensors.items())
        else:
            named = [("tensor%d" % i, lst) for i, lst in enumerate(tensors)]
        if not named:
            raise InvalidArgument("'tensors' is empty: an expert needs at least one tensor")
        T = len(named)
        self.specs: List[Dict[str, Any]] = []
        self.bases = (c_void_p * (layers * T))()
        self.strides = (c_uint64 * (layers * T))()
        self.keep: List[Any] = []
        for t, (name, per_layer) in enumerate(named):
            per_layer = list(per_layer)
            if len(per_layer) != layers:
                raise InvalidArgument("tensors['%s'] has %d layers' tensors, expected %d" % (name, len(per_layer), layers))
            first = None
            for l, x in enumerate(per_layer):
                what = "tensors['%s'][%d]" % (name, l)
                dtype, shape, base, stride = _slot_array(x, what, slots)
                if first is None:
                    first = (dtype, shape)
                    self.specs.append({"name": name, "shape": list(shape), "dtype": NAMES[dtype]})
                elif (dtype, shape) != first:
                    raise InvalidArgument("%s is %s %s but layer 0's is %s %s" % (
                        what, NAMES[dtype], list(shape), NAMES[first[0]], list(first[1])))
                self.bases[l * T + t] = base
                self.strides[l * T + t] = stride
                self.keep.append(x)


def _slot_array(x: Any, what: str, slots: int) -> Tuple[DataType, Tuple[int, ...], int, int]:
    """(dtype, expert shape, base address, slot stride in bytes) of one engine tensor."""
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    if torch is not None and isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            raise InvalidArgument("tensor '%s' is on device '%s': eccl moves CPU memory only" % (what, x.device))
        if x.layout != torch.strided:
            raise InvalidArgument("tensor '%s' has layout %s: eccl needs a dense (strided) tensor" % (what, x.layout))
        dtype = torch_table().get(x.dtype)
        shape, item = tuple(x.shape), x.element_size()
        stride = x.stride(0) * item if x.dim() else 0
        expert_contiguous = x.dim() >= 1 and (x.shape[0] == 0 or x[0].is_contiguous())
        base = x.data_ptr()
    elif np is not None and isinstance(x, np.ndarray):
        if not x.flags.writeable:
            raise InvalidArgument("array '%s' is read-only but eccl writes arriving experts into it" % what)
        dtype = numpy_table().get(x.dtype)
        shape, item = x.shape, x.itemsize
        stride = x.strides[0] if x.ndim else 0
        expert_contiguous = x.ndim >= 1 and (x.shape[0] == 0 or x[0].flags.c_contiguous)
        base = x.ctypes.data
    else:
        raise InvalidArgument("'%s' must be a torch.Tensor or a numpy.ndarray, not %s" % (what, type(x).__name__))
    if dtype is None:
        raise InvalidArgument("'%s' has dtype %s, which eccl does not support" % (what, x.dtype))
    if len(shape) < 1 or shape[0] != slots:
        raise InvalidArgument("'%s' has shape %s: dimension 0 must be the %d slots" % (what, list(shape), slots))
    if not expert_contiguous:
        raise InvalidArgument("'%s': each slot's expert ('%s'[s]) must be contiguous" % (what, what))
    expert_bytes = math.prod(shape[1:]) * item
    if slots > 1 and stride < expert_bytes:
        raise InvalidArgument("'%s': slots are %d bytes apart but an expert is %d bytes (overlapping slots)"
                              % (what, stride, expert_bytes))
    if slots == 1:
        stride = max(stride, expert_bytes)  # a lone slot's stride is arbitrary in torch; any >= size works
    return dtype, tuple(int(d) for d in shape[1:]), base, stride


def _config(layers: int, experts: int, slots: int, specs: List[Dict[str, Any]], policy: Optional[str],
            heat_steps: Optional[int], algorithm_steps: Optional[int], episodes: Optional[int], nodes: Optional[int],
            export_map_path: Optional[str], initial_map: Optional[MapLike]) -> bytes:
    """The configuration JSON of ecclEplbCreate/ecclEplbJoin (None = the C default)."""
    cfg: Dict[str, Any] = {"layers": int(layers), "experts": int(experts), "slots": int(slots), "tensors": specs}
    optional = {"policy": policy, "heat_steps": heat_steps, "algorithm_steps": algorithm_steps,
                "episodes": episodes, "nodes": nodes, "export_map_path": export_map_path}
    cfg.update({k: v for k, v in optional.items() if v is not None})
    if initial_map is not None:
        cfg["initial_map"] = _map_object(initial_map, "initial_map")
    return json.dumps(cfg).encode()


class Eplb(Resource):
    """One rank's EPLB updater (``ecclEplb_t``).

    Args:
        comm: the expert-parallel communicator (e.g. ``group.comm`` of an ElasticGroup, for
            elasticity); creation is collective on it.
        layers, experts, slots: L MoE layers, E logical experts, S slots per rank (E <= ranks*S).
        tensors: ``{"w13": [L tensors [S, ...]], "w2": [...]}`` (or a list of such lists).
        policy: "swift", "default" or "flash". heat_steps, algorithm_steps, episodes, nodes,
            export_map_path: see eccl_eplb.h (None = the library's default).
        initial_map: the expert map the tensors hold now (dict or JSON); default: experts in
            order, then copies, rank-major.
    """

    def __init__(self, comm: Communicator, layers: int, experts: int, slots: int, tensors: Tensors,
                 policy: Optional[str] = "swift", heat_steps: Optional[int] = None,
                 algorithm_steps: Optional[int] = None, episodes: Optional[int] = None, nodes: Optional[int] = 1,
                 export_map_path: Optional[str] = None, initial_map: Optional[MapLike] = None):
        eng = _EngineTensors(layers, slots, tensors)
        cfg = _config(layers, experts, slots, eng.specs, policy, heat_steps, algorithm_steps, episodes, nodes,
                      export_map_path, initial_map)
        L = _lib.load()
        h = c_void_p()
        L.ecclEplbCreate(comm.handle, cfg, eng.bases, eng.strides, byref(h))
        self._setup(L, h.value, layers, experts, slots, eng, comm)

    def _setup(self, L, handle: int, layers: int, experts: int, slots: int, eng: _EngineTensors,
               keepalive: Any) -> None:
        self._L = L
        self._h: Optional[int] = handle
        self.layers, self.experts, self.slots = int(layers), int(experts), int(slots)
        self._engine = eng  # the tensors must outlive the C object
        self._keepalive = keepalive  # the communicator or elastic group it runs on

    @classmethod
    def join(cls, store: TcpStore, name: str, epoch: int, new_rank: int, new_size: int, layers: int, experts: int,
             slots: int, tensors: Tensors, policy: Optional[str] = "swift", heat_steps: Optional[int] = None,
             algorithm_steps: Optional[int] = None, episodes: Optional[int] = None, nodes: Optional[int] = 1,
             export_map_path: Optional[str] = None) -> Tuple[ElasticGroup, "Eplb"]:
        """A new process joins elastic group ``name`` at ``epoch`` as ``new_rank`` of
        ``new_size``: builds the group with the serving ranks (which call :meth:`elastic_step`),
        receives its experts into ``tensors`` and returns (group, eplb). Blocks until then."""
        eng = _EngineTensors(layers, slots, tensors)
        cfg = _config(layers, experts, slots, eng.specs, policy, heat_steps, algorithm_steps, episodes, nodes,
                      export_map_path, None)
        L = _lib.load()
        g, e = c_void_p(), c_void_p()
        L.ecclEplbJoin(store.handle, name.encode(), int(epoch), _rank_arg(new_rank, "new_rank"),
                       _rank_arg(new_size, "new_size"), cfg, eng.bases, eng.strides, byref(g), byref(e))
        group = ElasticGroup(g.value, name, store)
        self = cls.__new__(cls)
        self._setup(L, e.value, layers, experts, slots, eng, group)
        return group, self

    # properties

    @property
    def handle(self) -> int:
        h = self._h
        if h is None:
            raise InvalidArgument("this Eplb was destroyed")
        return h

    def _info(self) -> "_lib.EplbInfo":
        info = _lib.EplbInfo()
        self._L.ecclEplbGetInfo(self.handle, byref(info))
        return info

    @property
    def ranks(self) -> int:
        """Ranks of the group it runs on (changes with :meth:`elastic_step`)."""
        return int(self._info().ranks)

    @property
    def rank(self) -> int:
        """This process's rank in that group."""
        return int(self._info().rank)

    @property
    def tensors(self) -> List[Any]:
        """The engine tensors, layer-major then tensor order."""
        return list(self._engine.keep)

    # the serving loop

    def record(self, layer: int, counts: Any) -> None:
        """Tokens routed this step to each local slot: ``layer >= 0`` with S counts, or
        ``layer == -1`` with L*S (flat or [L, S]). int32/int64/float32/float64 tensor or array
        (a list is accepted too); copied by the call."""
        h = self.handle
        torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
        if torch is not None and isinstance(counts, torch.Tensor):
            counts = counts.contiguous()
        elif np is not None and isinstance(counts, np.ndarray):
            counts = np.ascontiguousarray(counts)
        elif isinstance(counts, (list, tuple)):
            import numpy

            counts = numpy.asarray(counts, dtype=numpy.float64 if any(isinstance(c, float) for c in counts)
                                   else numpy.int64)
        b = as_buffer(counts, "counts")
        if b.dtype not in _COUNT_TYPES:
            raise InvalidArgument("'counts' is %s; use int32, int64, float32 or float64" % NAMES[b.dtype])
        want = self.slots if layer >= 0 else self.layers * self.slots
        if layer < -1 or layer >= self.layers:
            raise InvalidArgument("'layer' must be -1 (all) or 0..%d, got %d" % (self.layers - 1, layer))
        if b.count != want:
            raise InvalidArgument("'counts' has %d entries, layer %d needs %d" % (b.count, layer, want))
        self._L.ecclEplbRecord(h, int(layer), b.ptr, b.dtype, b.count)

    def before_forward(self) -> None:
        """Before each forward step: may start one layer's expert transfer."""
        self._L.ecclEplbBeforeForward(self.handle)

    def after_forward(self) -> int:
        """After each forward step: commits finished layers (weights and maps); returns how many
        layers changed (re-read the maps then)."""
        c = c_int32(0)
        self._L.ecclEplbAfterForward(self.handle, byref(c))
        return c.value

    # maps

    def maps(self, layer: Optional[int] = None):
        """(expert_map, log2phy) as new torch int32 tensors, [L, E] (or [E] for one layer).

        expert_map[l, e] = the local slot holding expert e, or -1; log2phy[l, e] = the physical
        replica (rank * S + slot) this rank routes e's tokens to."""
        import torch

        shape = (self.layers, self.experts) if layer is None else (self.experts,)
        em = torch.empty(shape, dtype=torch.int32)
        lp = torch.empty(shape, dtype=torch.int32)
        self._L.ecclEplbGetMaps(self.handle, -1 if layer is None else int(layer), em.data_ptr(), lp.data_ptr())
        return em, lp

    def expert_map(self, layer: Optional[int] = None):
        """expert_map (see :meth:`maps`) as a new torch int32 tensor."""
        import torch

        shape = (self.layers, self.experts) if layer is None else (self.experts,)
        em = torch.empty(shape, dtype=torch.int32)
        self._L.ecclEplbGetMaps(self.handle, -1 if layer is None else int(layer), em.data_ptr(), None)
        return em

    def log2phy(self, layer: Optional[int] = None):
        """log2phy (see :meth:`maps`) as a new torch int32 tensor."""
        import torch

        shape = (self.layers, self.experts) if layer is None else (self.experts,)
        lp = torch.empty(shape, dtype=torch.int32)
        self._L.ecclEplbGetMaps(self.handle, -1 if layer is None else int(layer), None, lp.data_ptr())
        return lp

    def placement(self):
        """The placement the weights hold: torch int32 [L, ranks, S] of logical expert ids."""
        import torch

        p = torch.empty((self.layers, self.ranks, self.slots), dtype=torch.int32)
        self._L.ecclEplbGetPlacement(self.handle, p.data_ptr(), p.numel())
        return p

    def export_map(self) -> str:
        """The placement as expert-map JSON (vllm-ascend's format)."""
        return _grow_string(self._L.ecclEplbExportMap, (self.handle,), 1 << 16)

    def apply_map(self, expert_map: MapLike) -> None:
        """Moves to ``expert_map`` (dict or JSON) from the next step on, one layer per step. Same
        call, same step, every rank."""
        self._L.ecclEplbApplyMap(self.handle, _map_text(expert_map, "expert_map").encode())

    def take_report(self) -> Optional[Dict[str, Any]]:
        """The report of the cycle that finished at the last after_forward (once), else None:
        {"cycle", "imbalance_before", "imbalance_after", "layers_changed", "slots_changed",
        "network_bytes", "bytes_sent", "bytes_received", "transfer_seconds", "policy_seconds"}."""
        text = _grow_string(self._L.ecclEplbTakeReport, (self.handle,), 1 << 14)
        return json.loads(text) if text else None

    # elasticity

    def elastic_step(self, group: ElasticGroup, new_size: int, old_to_new: Sequence[int]) -> Tuple[bool, bool]:
        """One step of a scale-up/down, between forward steps, on every member of the active
        epoch (same plan, same number of calls) until done. Returns (done, left): once done, the
        group has switched (fetch ``group.comm`` again); ``left`` on a rank that left (destroy
        this Eplb, then the group). Joining processes use :meth:`join`."""
        plan = _plan(new_size, old_to_new)
        arr = (c_int32 * len(plan))(*plan)
        done, left = c_int(0), c_int(0)
        try:
            self._L.ecclEplbElasticStep(self.handle, group.handle, int(new_size), arr, len(plan), byref(done),
                                        byref(left))
        finally:
            group._renumbering = plan
        if done.value:
            group._after_switch()
        return bool(done.value), bool(left.value)

    # surviving a rank crash

    def recover(self, group: ElasticGroup, checkpoint: Optional[str] = None,
                source: Optional[Callable[[int, int], Any]] = None) -> Tuple[RecoveryInfo, Dict[str, Any]]:
        """After a rank failure (a step raised ConnectionClosed or Aborted), on every survivor,
        between steps: recovers ``group`` (see :meth:`ElasticGroup.recover`), keeps every expert a
        survivor holds, writes each expert no survivor holds into the engine's tensors from the
        eccl ``checkpoint`` file (see :func:`write_checkpoint`) or from ``source(layer, expert)``
        (returns the expert's tensors, in config order or by name), and restarts the updater on
        the new group; the policy's rebalance follows over the next steps. Re-read the maps after.
        Returns (info, report): the report names the lost experts and what this rank reloaded."""
        if (checkpoint is None) == (source is None):
            raise InvalidArgument("give exactly one of 'checkpoint' (a path) and 'source' (a callable)")
        callback = _source_callback(source, self._engine.specs) if source is not None else None
        info = _lib.RecoveryInfoStruct()
        try:
            self._L.ecclEplbRecover(self.handle, group.handle, checkpoint.encode() if checkpoint else None,
                                    callback.fn if callback else _lib.WeightSourceFn(), None, byref(info))
        except Exception:
            if callback is not None and callback.error is not None:
                raise callback.error
            raise
        finally:
            group._after_switch()
        report = json.loads(_grow_string(self._L.ecclEplbRecoveryReport, (self.handle,), 1 << 14))
        return RecoveryInfo._from(info, list(report["old_to_new"])), report

    def write_checkpoint(self, path: str, source: Callable[[int, int], Any]) -> None:
        """Writes an eccl checkpoint of every expert of this model (see :func:`write_checkpoint`)."""
        write_checkpoint(path, self.layers, self.experts, self._engine.specs, source)

    # teardown

    def destroy(self) -> None:
        """Frees the updater (idempotent); the engine tensors are released to the caller."""
        h, self._h = self._h, None
        if h is None:
            return
        self._L.ecclEplbDestroy(h)
        self._engine = None
        self._keepalive = None

    close = destroy

    def __repr__(self) -> str:
        try:
            where = "ranks=%d" % self.ranks
        except Exception:  # destroyed, or this rank left its group
            where = "detached"
        return "<eccl.Eplb L=%d E=%d S=%d %s>" % (self.layers, self.experts, self.slots, where)


class _SourceCallback:
    """``source(layer, expert)`` as an ecclEplbWeightSourceFn; keeps the first exception."""

    def __init__(self, source: Callable[[int, int], Any], specs: List[Dict[str, Any]]):
        self.error: Optional[BaseException] = None
        names = [sp["name"] for sp in specs]
        sizes = [math.prod(sp["shape"]) * ITEM_SIZE[_dtype_of(sp["dtype"])] for sp in specs]

        def call(user, layer, expert, tensors):
            try:
                got = source(int(layer), int(expert))
                items = [got[n] for n in names] if isinstance(got, dict) else list(got)
                if len(items) != len(names):
                    raise InvalidArgument("the weight source gave %d tensors for expert %d of layer %d; the model has %d (%s)"
                                          % (len(items), expert, layer, len(names), ", ".join(names)))
                for t, (x, size) in enumerate(zip(items, sizes)):
                    buf = as_buffer(x, "%s of expert %d, layer %d" % (names[t], expert, layer))
                    if buf.nbytes != size:
                        raise InvalidArgument("the weight source gave %d bytes for %s of expert %d, layer %d; it has %d"
                                              % (buf.nbytes, names[t], expert, layer, size))
                    ctypes.memmove(tensors[t], buf.ptr, size)
                return 0
            except BaseException as e:  # noqa: B902 - reported after the C call returns
                if self.error is None:
                    self.error = e
                return 1

        self.fn = _lib.WeightSourceFn(call)


def _dtype_of(name: str) -> DataType:
    try:
        return BY_NAME[name]
    except KeyError:
        raise InvalidArgument("unknown dtype name '%s' (expected one of %s)" % (name, ", ".join(NAMES.values()))) from None


def _source_callback(source: Callable[[int, int], Any], specs: List[Dict[str, Any]]) -> _SourceCallback:
    if not callable(source):
        raise InvalidArgument("'source' must be a callable (layer, expert) -> tensors")
    return _SourceCallback(source, specs)


def write_checkpoint(path: str, layers: int, experts: int, tensors: Sequence[Dict[str, Any]],
                     source: Callable[[int, int], Any]) -> None:
    """Writes an eccl checkpoint file: every expert of every layer, from ``source(layer, expert)``
    (the expert's tensors, in ``tensors`` order or by name), with a checksum per expert, renamed
    into place once complete. ``tensors``: ``[{"name", "shape", "dtype"}]`` of one expert (an
    Eplb's model: :meth:`Eplb.write_checkpoint`)."""
    specs = [dict(t) for t in tensors]
    cfg = json.dumps({"layers": int(layers), "experts": int(experts), "slots": 1, "tensors": specs}).encode()
    callback = _source_callback(source, specs)
    try:
        _lib.load().ecclEplbWriteCheckpoint(cfg, str(path).encode(), callback.fn, None)
    except Exception:
        if callback.error is not None:
            raise callback.error
        raise


def loads_json(loads: Any) -> Dict[str, Any]:
    """Expert loads ([L, E], or [L, episodes, E]; torch, numpy or nested lists) as the loads JSON
    object {"num_experts": E, "layers": [{"layer_id": i, "load": [...]} or "episodes"]}."""
    if hasattr(loads, "tolist"):
        if hasattr(loads, "detach"):  # torch: bf16 and friends have no numpy form; go through float64
            loads = loads.detach().cpu()
            if loads.is_floating_point():
                loads = loads.double()
        data = loads.tolist()
    else:
        data = loads
    if not isinstance(data, list) or not data or not isinstance(data[0], list):
        raise InvalidArgument("'loads' must be [layers, experts] or [layers, episodes, experts]")
    three_d = isinstance(data[0][0], list) if data[0] else False
    E = len(data[0][0]) if three_d else len(data[0])
    layers = []
    for i, row in enumerate(data):
        if three_d:
            if any(len(ep) != E for ep in row):
                raise InvalidArgument("'loads'[%d] has episodes of differing lengths (expected %d experts)" % (i, E))
            layers.append({"layer_id": i, "episodes": row})
        else:
            if len(row) != E:
                raise InvalidArgument("'loads'[%d] has %d experts, layer 0 has %d" % (i, len(row), E))
            layers.append({"layer_id": i, "load": row})
    return {"num_experts": E, "layers": layers}


def plan(policy: str, ranks: int, slots: int, loads: Any, current_map: Optional[MapLike] = None,
         nodes: int = 1) -> Dict[str, Any]:
    """A placement for ``loads`` without an updater (``ecclEplbPlan``): the new expert map as a
    dict (vllm-ascend's format). ``loads``: [L, E] or [L, episodes, E]; ``current_map``: the
    placement now (dict or JSON), which policies that minimise movement start from."""
    request: Dict[str, Any] = {"policy": policy, "ranks": int(ranks), "slots": int(slots), "nodes": int(nodes),
                               "loads": loads_json(loads)}
    if current_map is not None:
        request["current_map"] = _map_object(current_map, "current_map")
    try:
        text = json.dumps(request, allow_nan=False)
    except ValueError:
        raise InvalidArgument("'loads' holds NaN or infinity") from None
    L = _lib.load()
    return json.loads(_grow_string(L.ecclEplbPlan, (text.encode(),), 1 << 16))

