"""Elastic groups: membership changes by epochs while the active epoch keeps serving.

The flow (every current member, same plan)::

    group = ElasticGroup.join(store, "ep", rank, size)        # epoch 0
    ... group.comm.all_reduce(x) ...
    group.prepare(new_size, old_to_new)                        # the next epoch builds beside it
    ... keep serving on group.comm; group.standby_comm() to hand state to joiners ...
    if not group.switch_over():                                # drains the old epoch, switches
        group.destroy()                                        # this rank left

A process joining epoch ``e`` calls ``ElasticGroup.join(store, "ep", new_rank, new_size, epoch=e)``.

After a rank crashes (an operation raises ConnectionClosed or Aborted; ``group.comm.failed_ranks()``
names it), every survivor calls ``info = group.recover()``: they agree on the failed set and
build the next epoch without it (``info.old_to_new`` renumbers them, in order).

Communicators from ``comm`` / ``standby_comm()`` belong to the group: ``destroy()`` on them only
detaches the wrapper, and they become invalid (any call raises ``InvalidArgument``) when the
group switches or is destroyed, so fetch ``group.comm`` again after ``switch_over()``.
Not thread-safe: one thread drives prepare/switch/destroy (others may use ``group.comm`` until
the switch).
"""
from __future__ import annotations

from ctypes import byref, c_int, c_int32, c_uint64, c_void_p
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import _lib
from .comm import Communicator, _rank_arg
from .errors import InvalidArgument
from .store import TcpStore
from ._resource import Resource


@dataclass(frozen=True)
class RecoveryInfo:
    """What :meth:`ElasticGroup.recover` (or :meth:`eccl.Eplb.recover`) did."""

    old_epoch: int
    epoch: int
    old_rank: int
    rank: int
    old_size: int
    size: int
    failed: List[int]        # ranks of the old epoch, ascending
    old_to_new: List[int]    # per old rank: its new rank, -1 for a failed one
    rounds: int              # > 1 when a rank failed during the recovery itself
    agree_seconds: float
    build_seconds: float

    @staticmethod
    def _from(info: "_lib.RecoveryInfoStruct", old_to_new: List[int]) -> "RecoveryInfo":
        return RecoveryInfo(info.oldEpoch, info.epoch, info.oldRank, info.rank, info.oldSize, info.size,
                            [r for r, n in enumerate(old_to_new) if n < 0], old_to_new, info.rounds,
                            info.agreeSeconds, info.buildSeconds)


class ElasticGroup(Resource):
    """An elastic group (``ecclElastic_t``) of this process. Keeps its store alive."""

    def __init__(self, handle: int, name: str, store: Optional[TcpStore] = None):
        """Wraps an owned handle; use :meth:`join` (or :meth:`eccl.Eplb.join`)."""
        self._L = _lib.load()
        self._h: Optional[int] = handle
        self.name = name
        self._store = store
        self._renumbering: Optional[List[int]] = None
        # Borrowed communicator wrappers handed out, so they can be invalidated at the switch
        # (the C side frees their handles then). Strong references: the wrapper is cached, and
        # it refers back to the group (its owner) so the group outlives every wrapper in use.
        self._active: Optional[Communicator] = None
        self._standby: Optional[Communicator] = None

    @classmethod
    def join(cls, store: TcpStore, name: str, rank: int, size: int, epoch: int = 0) -> "ElasticGroup":
        """Joins group ``name`` at ``epoch`` as ``rank`` of ``size`` (blocks until it is built).
        Epoch 0 for the founding members; a later epoch for a process joining a prepared one."""
        L = _lib.load()
        h = c_void_p()
        L.ecclElasticJoin(store.handle, name.encode(), int(epoch), _rank_arg(rank, "rank"), _rank_arg(size, "size"),
                          byref(h))
        return cls(h.value, name, store)

    @property
    def handle(self) -> int:
        h = self._h
        if h is None:
            raise InvalidArgument("elastic group '%s' was destroyed" % self.name)
        return h

    def _wrap(self, ptr: int, cached: Optional[Communicator], what: str) -> Communicator:
        if cached is not None and cached._h == ptr:
            return cached
        return Communicator(ptr, "%s (%s)" % (self.name, what), owned=False, owner=self)

    @property
    def comm(self) -> Communicator:
        """The active epoch's communicator (borrowed; invalid after :meth:`switch_over`)."""
        p = c_void_p()
        self._L.ecclElasticComm(self.handle, byref(p))
        self._active = self._wrap(p.value, self._active, "active")
        return self._active

    def standby_comm(self) -> Communicator:
        """The prepared epoch's communicator (waits for its build), to move state to joining ranks
        before the switch. Borrowed, like :attr:`comm`."""
        p = c_void_p()
        self._L.ecclElasticStandbyComm(self.handle, byref(p))
        self._standby = self._wrap(p.value, self._standby, "standby")
        return self._standby

    @property
    def epoch(self) -> int:
        e = c_uint64(0)
        self._L.ecclElasticEpoch(self.handle, byref(e))
        return e.value

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    @property
    def renumbering(self) -> Optional[List[int]]:
        """The old -> new rank list of the last :meth:`prepare` (-1 = leaving), or None."""
        return None if self._renumbering is None else list(self._renumbering)

    @property
    def next_rank(self) -> int:
        """This rank's rank in the prepared epoch, -1 when it leaves."""
        r = c_int32(0)
        self._L.ecclElasticNextRank(self.handle, byref(r))
        return r.value

    def prepare(self, new_size: int, old_to_new: Sequence[int]) -> None:
        """Starts building the next epoch: ``old_to_new[r]`` = rank r's new rank, -1 = leaving;
        joiners take the new ranks nobody maps to. Every current member, same plan."""
        plan = _plan(new_size, old_to_new)
        arr = (c_int32 * len(plan))(*plan)
        self._L.ecclElasticPrepare(self.handle, int(new_size), arr, len(plan))
        self._renumbering = plan

    def switch_over(self) -> bool:
        """Drains the old epoch and switches to the prepared one. False when this rank left
        (then destroy the group). Invalidates every communicator wrapper handed out."""
        m = c_int(0)
        # The C side frees the borrowed handles only when the switch happened; a refused or
        # failed switch leaves them (and the wrappers) as they were.
        self._L.ecclElasticSwitch(self.handle, byref(m))
        self._after_switch()
        return bool(m.value)

    def recover(self) -> RecoveryInfo:
        """After a rank failure, on every survivor: agree on the failed ranks through the store
        and build the next epoch without them (survivors keep their order). Raises Aborted on a
        rank the others declared failed (destroy the group then), and the store's error when the
        store is unreachable. Invalidates every communicator wrapper handed out; refused while an
        :class:`~eccl.Eplb` runs on the group (use :meth:`eccl.Eplb.recover`)."""
        old_size = self.size
        arr = (c_int32 * old_size)()
        info = _lib.RecoveryInfoStruct()
        try:
            self._L.ecclElasticRecover(self.handle, arr, old_size, byref(info))
        finally:
            self._after_switch()
        return RecoveryInfo._from(info, list(arr))

    def _after_switch(self) -> None:
        # The C side freed the borrowed communicator handles: make stale wrappers fail cleanly.
        for w in (self._active, self._standby):
            if w is not None:
                w._invalidate("communicator of elastic group '%s' is stale: the group switched epochs "
                              "(fetch group.comm again)" % self.name)
        self._active = self._standby = None

    def destroy(self) -> None:
        """Leaves and frees the group (idempotent). Invalidates its communicators. Refused
        (InvalidArgument, nothing changed) while an :class:`~eccl.Eplb` runs on it."""
        h = self._h
        if h is None:
            return
        self._L.ecclElasticDestroy(h)
        self._h = None
        for w in (self._active, self._standby):
            if w is not None:
                w._invalidate("elastic group '%s' was destroyed" % self.name)
        self._active = self._standby = None
        self._store = None

    close = destroy

    def __repr__(self) -> str:
        return "<eccl.ElasticGroup %r%s>" % (self.name, "" if self._h else " destroyed")


def _plan(new_size: int, old_to_new: Sequence[int]) -> List[int]:
    """Validates an old -> new renumbering (the C side checks it against the group too)."""
    plan = [int(r) for r in old_to_new]
    if new_size <= 0:
        raise InvalidArgument("'new_size' must be positive, got %d" % new_size)
    for i, r in enumerate(plan):
        if not -1 <= r < new_size:
            raise InvalidArgument("old_to_new[%d] = %d: must be -1 (leaving) or a rank 0..%d" % (i, r, new_size - 1))
    kept = [r for r in plan if r >= 0]
    if len(set(kept)) != len(kept):
        raise InvalidArgument("old_to_new %s maps two ranks to the same new rank" % plan)
    return plan
