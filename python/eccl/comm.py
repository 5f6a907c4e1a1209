"""Communicators, async work and point-to-point operations, shaped like torch.distributed.

Every tensor argument may be a CPU torch tensor or a numpy array, contiguous; nothing is copied
(see :mod:`eccl.buffers`). Counts follow the tensors: ``all_gather(output, input)`` needs
``output`` to hold ``size * input.numel()`` elements, in rank order (torch's
``all_gather_into_tensor`` layout).

Blocking calls return when the operation is done on this rank; with ``async_op=True`` they return
a :class:`Work` at once. Collectives must be issued in the same order on every rank. A
communicator may be used from several threads at once (the C side is thread-safe and the GIL is
released during every C call), but ``destroy()`` must not race with other calls on it.

Errors raise :mod:`eccl.errors` exceptions: argument mistakes ``InvalidArgument`` (a
``ValueError``) naming the argument; a dead peer ``ConnectionClosed``; an abort ``Aborted``; a
deadline (``$ECCL_TIMEOUT`` seconds, 300 by default) ``Timeout``.
"""
from __future__ import annotations

import ctypes
import enum
import math
import operator
import threading
import weakref
from ctypes import byref, c_int, c_uint32, c_uint64, c_void_p
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import _lib
from ._resource import Resource
from .buffers import Buffer, as_buffer, rows, same_dtype
from .dtypes import NAMES, NO_REDUCTION
from .errors import EcclError, InvalidArgument, Timeout, make_error
from .store import TcpStore

_SEND, _RECV = 0, 1  # ecclSendRecvType_t


class ReduceOp(enum.IntEnum):
    """``ecclRedOp_t``. Methods also take the strings "sum", "prod", "min", "max"."""

    SUM = 0
    PROD = 1
    MIN = 2
    MAX = 3


_OPS = {"sum": ReduceOp.SUM, "prod": ReduceOp.PROD, "min": ReduceOp.MIN, "max": ReduceOp.MAX}


def _red_op(op: Union[str, ReduceOp, int]) -> int:
    if isinstance(op, str):
        r = _OPS.get(op.lower())
        if r is None:
            raise InvalidArgument("'op' must be one of %s, got %r" % (", ".join(_OPS), op))
        return int(r)
    if isinstance(op, int) and 0 <= op <= 3:
        return int(op)
    raise InvalidArgument("'op' must be one of %s or an eccl.ReduceOp, got %r" % (", ".join(_OPS), op))


def _rank_arg(value: Any, name: str) -> int:
    # ctypes would silently wrap a negative or huge rank into uint32: refuse those here; the C
    # side checks the rank against the communicator's size and names it.
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgument("'%s' must be an integer rank, not %s" % (name, type(value).__name__)) from None
    if not 0 <= v <= 0xFFFFFFFF:
        raise InvalidArgument("'%s' must be an integer 0 .. 2^32-1, got %d" % (name, v))
    return v


def _tag_arg(value: Any) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgument("'tag' must be an integer, not %s" % type(value).__name__) from None
    if not 0 <= v <= _lib.MAX_TAG:
        raise InvalidArgument("'tag' must be 0 .. 2^62-1 (ECCL_MAX_TAG), got %d" % v)
    return v


# --- Work --------------------------------------------------------------------------------------

# Handles of work dropped by Python before the operation finished, with the buffers it uses. The
# C side may still write those buffers, so they stay referenced here until a later sweep finds
# the operation done. (torch's Work has the same rule: dropping it does not cancel.)
_orphans: List[Tuple[int, Any]] = []
_orphans_lock = threading.Lock()


def _sweep_orphans(L) -> None:
    with _orphans_lock:
        if not _orphans:
            return
        pending = list(_orphans)
        _orphans.clear()
    keep = []
    for h, refs in pending:
        done = c_int(0)
        try:
            L.ecclWorkTest(h, byref(done))
        except EcclError:
            pass  # a failed operation is finished too (done is set then)
        if done.value:
            try:
                L.ecclWorkFree(h)
            except EcclError:
                pass
        else:
            keep.append((h, refs))
    if keep:
        with _orphans_lock:
            _orphans.extend(keep)


class Work:
    """An operation in flight (like torch's ``Work``).

    Holds references to every tensor, array and ctypes array the operation uses (and to its
    communicator) until the handle is freed, so nothing it touches is garbage-collected under
    the C library. The handle is freed when this object is; if the operation is still running
    then, its buffers are kept alive until it finishes. Thread-safe, except that a Work must not
    be used while it is being garbage-collected (which cannot happen while you hold it).
    """

    __slots__ = ("_L", "_h", "_refs", "_comm", "_what", "_done", "_error", "__weakref__")

    def __init__(self, comm: "Communicator", handle: int, refs: Any, what: str):
        self._L = comm._L
        self._h = handle
        self._refs = refs
        self._comm = comm
        self._what = what
        self._done = False
        self._error: Optional[EcclError] = None
        if _orphans:
            _sweep_orphans(self._L)

    def _finish(self, error: Optional[EcclError]) -> None:
        self._error = error
        self._done = True

    def _raise_result(self) -> bool:
        if self._error is not None:
            # A fresh exception each time, so tracebacks do not pile up on one instance.
            raise make_error(self._error.code, str(self._error))
        return True

    def _test(self) -> bool:
        done = c_int(0)
        try:
            self._L.ecclWorkTest(self._h, byref(done))
        except EcclError as e:
            if not done.value:
                raise  # the test itself failed (e.g. a stale handle)
            self._finish(e)
            return True
        if done.value:
            self._finish(None)
        return bool(done.value)

    def is_completed(self) -> bool:
        """True once the operation finished, successfully or not (``wait()`` then reports how)."""
        return self._done or self._test()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits until the operation finishes; returns True or raises its error.

        ``timeout`` in seconds (None = the communicator's timeout). When it passes, raises
        ``Timeout``: a collective keeps running (wait again, or abort the communicator); P2P
        work is withdrawn at once (its buffers are free; a message it would have matched is not
        delivered to a later receive, so use a fresh tag).
        Does not hold any lock: other threads may use the communicator meanwhile.
        """
        if self._done:
            return self._raise_result()
        try:
            self._L.ecclWorkWait(self._h, _lib.seconds_to_ms(timeout))
        except Timeout:
            # Either this wait's deadline (the operation goes on) or the operation itself timed
            # out (it is over): ecclWorkTest tells them apart.
            if self._test():
                return self._raise_result()
            raise
        except EcclError as e:
            self._finish(e)
            raise
        self._finish(None)
        return True

    def exception(self) -> Optional[EcclError]:
        """The error the finished operation failed with, else None (also while running)."""
        if not self._done:
            self._test()
        return self._error

    def cancel(self) -> None:
        """P2P work only: once this returns, no buffer of the operation is touched any more."""
        self._L.ecclWorkCancel(self._h)
        if not self._done:
            self._finish(make_error(6, "%s was cancelled" % self._what))

    def __del__(self):
        h = getattr(self, "_h", None)
        if not h:
            return
        self._h = None
        try:
            if not self._done:
                try:
                    self._test()
                except EcclError:
                    pass
            if self._done:
                self._L.ecclWorkFree(h)
            else:
                with _orphans_lock:
                    _orphans.append((h, (self._refs, self._comm)))
        except Exception:
            pass  # interpreter shutdown: nothing left to protect

    def __repr__(self) -> str:
        state = "failed" if self._error else ("done" if self._done else "pending")
        return "<eccl.Work %s %s>" % (self._what, state)


# --- registrations -------------------------------------------------------------------------------


class MemoryRegistration(Resource):
    """Memory registered with a communicator (``ecclCommRegister``) for buffers used again and
    again; pass it to :class:`P2POp` as ``registration=``. Keeps the tensor alive until
    ``deregister()`` (or garbage collection, or the communicator's destruction, which releases
    every registration). Only valid with the communicator that made it.
    """

    def __init__(self, comm: "Communicator", handle: int, buf: Buffer):
        self.comm = comm
        self._h: Optional[int] = handle
        self.tensor = buf.obj
        self.ptr = buf.ptr
        self.nbytes = buf.nbytes

    @property
    def handle(self) -> int:
        h = self._h
        if not h:
            raise InvalidArgument("this registration was released (deregistered or its communicator destroyed)")
        return h

    def covers(self, buf: Buffer) -> bool:
        return self.ptr <= buf.ptr and buf.ptr + buf.nbytes <= self.ptr + self.nbytes

    def _released(self) -> None:
        self._h = None
        self.tensor = None

    def deregister(self) -> None:
        """Releases the registration (idempotent)."""
        h, self._h = self._h, None
        self.tensor = None
        if h and self.comm._h:
            self.comm._L.ecclCommDeregister(self.comm._h, h)

    close = deregister


# --- point-to-point descriptors ---------------------------------------------------------------


def isend(tensor: Any, dst: int, comm: "Communicator", tag: int = 0) -> Work:
    """``comm.isend(tensor, dst, tag)``; also the ``op`` of a send :class:`P2POp`."""
    return comm.isend(tensor, dst, tag)


def irecv(tensor: Any, src: int, comm: "Communicator", tag: int = 0) -> Work:
    """``comm.irecv(tensor, src, tag)``; also the ``op`` of a receive :class:`P2POp`."""
    return comm.irecv(tensor, src, tag)


def _p2p_kind(op: Any) -> int:
    f = getattr(op, "__func__", op)  # bound methods compare by their function
    if f is isend or f is Communicator.isend or op in ("send", "isend"):
        return _SEND
    if f is irecv or f is Communicator.irecv or op in ("recv", "irecv"):
        return _RECV
    raise InvalidArgument("P2POp 'op' must be eccl.isend, eccl.irecv, 'send' or 'recv', got %r" % (op,))


class P2POp:
    """One send or receive of :func:`batch_isend_irecv` (like ``torch.distributed.P2POp``).

    ``op`` is ``eccl.isend``/``eccl.irecv`` (or "send"/"recv"); ``peer`` the other rank; messages
    between a pair match by ``tag``, in posting order within a tag. ``registration`` optionally
    names a :class:`MemoryRegistration` holding the tensor; ``comm`` the communicator (needed
    by the module-level :func:`batch_isend_irecv` only).
    """

    __slots__ = ("op", "tensor", "peer", "tag", "registration", "comm", "_kind")

    def __init__(self, op: Any, tensor: Any, peer: int, tag: int = 0,
                 registration: Optional[MemoryRegistration] = None, comm: Optional["Communicator"] = None):
        self._kind = _p2p_kind(op)
        self.op = op
        self.tensor = tensor
        self.peer = _rank_arg(peer, "peer")
        self.tag = _tag_arg(tag)
        self.registration = registration
        self.comm = comm

    @property
    def is_send(self) -> bool:
        return self._kind == _SEND

    def __repr__(self) -> str:
        return "P2POp(%s, peer=%d, tag=%d)" % ("send" if self.is_send else "recv", self.peer, self.tag)


def batch_isend_irecv(ops: Sequence[P2POp], comm: Optional["Communicator"] = None) -> Work:
    """Starts every op together (one ``ecclBatchSendRecvAsync``); they complete in any order.

    The communicator is ``comm``, else the one the ops (or their registrations) name.
    """
    if comm is None:
        comms = {id(c): c for c in ([op.comm for op in ops] + [op.registration.comm for op in ops if op.registration])
                 if c is not None}
        if len(comms) != 1:
            raise InvalidArgument("batch_isend_irecv needs exactly one communicator: pass comm= (the ops name %d)"
                                  % len(comms))
        comm = next(iter(comms.values()))
    return comm.batch_isend_irecv(ops)


# --- communicator -----------------------------------------------------------------------------


def get_root_info() -> bytes:
    """Starts a rendezvous store in this process (rank 0) and returns its description, to pass
    to every rank out of band for :meth:`Communicator.from_root_info` (HCCL/NCCL style)."""
    info = _lib.RootInfo()
    _lib.load().ecclGetRootInfo(byref(info))
    return bytes(info.internal)


class Communicator(Resource):
    """A group of ``size`` ranks (``ecclComm_t``); this process is ``rank``.

    Build one with :meth:`from_store`, :meth:`from_address`, :meth:`from_root_info` or
    :func:`init_from_env`; an :class:`~eccl.ElasticGroup` hands out borrowed ones (``.comm``).
    ``destroy()`` (also ``close()``, the context manager, or garbage collection) frees an owned
    communicator; on a borrowed one it only detaches this wrapper.
    """

    def __init__(self, handle: int, name: str = "", owned: bool = True, keepalive: Any = None, owner: Any = None):
        """Wraps a handle. ``keepalive``: an object (the store) that must outlive it; ``owner``:
        the elastic group a borrowed communicator belongs to."""
        self._L = _lib.load()
        self._h: Optional[int] = handle
        self.name = name
        self._owned = owned
        self._keepalive = keepalive
        self._owner = owner
        self._gone = "communicator '%s' was destroyed" % name
        self._registrations: "weakref.WeakSet[MemoryRegistration]" = weakref.WeakSet()
        r, s = c_uint32(0), c_uint32(0)
        self._L.ecclCommRank(handle, byref(r))
        self._L.ecclCommSize(handle, byref(s))
        self._rank = r.value
        self._size = s.value

    # constructors

    @classmethod
    def from_store(cls, store: TcpStore, name: str, rank: int, size: int, epoch: int = 0) -> "Communicator":
        """Every rank: builds group ``name`` at ``epoch`` over a store connection this process
        holds (kept alive as long as the communicator). Blocks until all ``size`` ranks joined."""
        L = _lib.load()
        h = c_void_p()
        L.ecclCommInitWithStore(store.handle, name.encode(), int(epoch), _rank_arg(rank, "rank"), _rank_arg(size, "size"),
                                byref(h))
        return cls(h.value, name, keepalive=store)

    @classmethod
    def from_address(cls, address: str, name: str, rank: int, size: int, epoch: int = 0) -> "Communicator":
        """Like :meth:`from_store`, connecting to the store at ``"host:port"`` itself."""
        L = _lib.load()
        h = c_void_p()
        L.ecclCommInitFromStore(address.encode(), name.encode(), int(epoch), _rank_arg(rank, "rank"),
                                _rank_arg(size, "size"), byref(h))
        return cls(h.value, name)

    @classmethod
    def from_root_info(cls, root_info: bytes, rank: int, size: int) -> "Communicator":
        """Every rank: the communicator described by :func:`get_root_info`'s bytes."""
        if len(root_info) != _lib.ROOT_INFO_BYTES:
            raise InvalidArgument("'root_info' must be %d bytes (from get_root_info), got %d"
                                  % (_lib.ROOT_INFO_BYTES, len(root_info)))
        info = _lib.RootInfo()
        ctypes.memmove(byref(info), root_info, len(root_info))
        L = _lib.load()
        h = c_void_p()
        L.ecclCommInitRootInfo(_rank_arg(size, "size"), byref(info), _rank_arg(rank, "rank"), byref(h))
        return cls(h.value, "root")

    # properties

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def size(self) -> int:
        return self._size

    @property
    def handle(self) -> int:
        """The ``ecclComm_t`` (for C calls); raises once destroyed or invalidated."""
        h = self._h
        if h is None:
            raise InvalidArgument(self._gone)
        return h

    @property
    def is_borrowed(self) -> bool:
        return not self._owned

    def _invalidate(self, reason: str) -> None:
        # The C handle was freed by its owner (an elastic group that switched or was destroyed).
        self._h = None
        self._gone = reason
        for reg in list(self._registrations):
            reg._released()

    def _start(self, fn, args: tuple, refs: Any, what: str) -> Work:
        w = c_void_p()
        fn(*args, byref(w))
        return Work(self, w.value, refs, what)

    # collectives

    def all_gather(self, output: Any, input: Any, async_op: bool = False) -> Optional[Work]:
        """``output`` (size x input's elements) = every rank's ``input``, in rank order."""
        h = self.handle
        i = as_buffer(input, "input")
        o = as_buffer(output, "output", True)
        same_dtype(i, "input", o, "output")
        if o.count != self._size * i.count:
            raise InvalidArgument("'output' has %d elements, all_gather needs %d (%d ranks x %d)"
                                  % (o.count, self._size * i.count, self._size, i.count))
        if async_op:
            return self._start(self._L.ecclAllGatherAsync, (i.ptr, o.ptr, i.count, i.dtype, h), (i.obj, o.obj),
                               "all_gather")
        self._L.ecclAllGather(i.ptr, o.ptr, i.count, i.dtype, h)
        return None

    def all_reduce(self, tensor: Any, op: Union[str, ReduceOp] = "sum", async_op: bool = False) -> Optional[Work]:
        """Reduces ``tensor`` over all ranks, in place."""
        h = self.handle
        b = as_buffer(tensor, "tensor", True)
        o = _red_op(op)
        if b.dtype in NO_REDUCTION:
            raise InvalidArgument("tensor 'tensor' is %s, which eccl moves but cannot reduce" % NAMES[b.dtype])
        if async_op:
            return self._start(self._L.ecclAllReduceAsync, (b.ptr, b.ptr, b.count, b.dtype, o, h), b.obj, "all_reduce")
        self._L.ecclAllReduce(b.ptr, b.ptr, b.count, b.dtype, o, h)
        return None

    def reduce_scatter(self, output: Any, input: Any, op: Union[str, ReduceOp] = "sum",
                       async_op: bool = False) -> Optional[Work]:
        """``output`` = this rank's chunk of the reduction of ``input`` (size x output's elements)."""
        h = self.handle
        i = as_buffer(input, "input")
        o = as_buffer(output, "output", True)
        same_dtype(i, "input", o, "output")
        r = _red_op(op)
        if i.count != self._size * o.count:
            raise InvalidArgument("'input' has %d elements, reduce_scatter needs %d (%d ranks x %d)"
                                  % (i.count, self._size * o.count, self._size, o.count))
        if o.dtype in NO_REDUCTION:
            raise InvalidArgument("'input' is %s, which eccl moves but cannot reduce" % NAMES[o.dtype])
        if async_op:
            return self._start(self._L.ecclReduceScatterAsync, (i.ptr, o.ptr, o.count, o.dtype, r, h), (i.obj, o.obj),
                               "reduce_scatter")
        self._L.ecclReduceScatter(i.ptr, o.ptr, o.count, o.dtype, r, h)
        return None

    def broadcast(self, tensor: Any, src: int, async_op: bool = False) -> Optional[Work]:
        """Copies rank ``src``'s ``tensor`` into every rank's ``tensor``."""
        h = self.handle
        root = _rank_arg(src, "src")
        b = as_buffer(tensor, "tensor", root != self._rank)
        if async_op:
            return self._start(self._L.ecclBroadcastAsync, (b.ptr, b.count, b.dtype, root, h), b.obj, "broadcast")
        self._L.ecclBroadcast(b.ptr, b.count, b.dtype, root, h)
        return None

    def _splits(self, splits: Optional[Sequence[int]], n_rows: int, arg: str, split_arg: str) -> List[int]:
        if splits is None:
            if n_rows % self._size:
                raise InvalidArgument("'%s' has %d rows along dimension 0, not divisible by %d ranks: give %s"
                                      % (arg, n_rows, self._size, split_arg))
            return [n_rows // self._size] * self._size
        out = [operator.index(s) for s in splits]
        if len(out) != self._size:
            raise InvalidArgument("'%s' has %d entries, one per rank needs %d" % (split_arg, len(out), self._size))
        if any(s < 0 for s in out):
            raise InvalidArgument("'%s' has a negative entry: %s" % (split_arg, out))
        if sum(out) != n_rows:
            raise InvalidArgument("'%s' sums to %d but '%s' has %d rows along dimension 0"
                                  % (split_arg, sum(out), arg, n_rows))
        return out

    def all_to_all_v(self, output: Any, input: Any, output_split_sizes: Optional[Sequence[int]] = None,
                     input_split_sizes: Optional[Sequence[int]] = None, async_op: bool = False) -> Optional[Work]:
        """Rank r sends ``input_split_sizes[j]`` rows (dimension 0) to rank j and receives
        ``output_split_sizes[j]`` rows from rank j, in rank order (torch's all_to_all_single).
        None = equal splits (the rows must divide by size)."""
        h = self.handle
        i = as_buffer(input, "input")
        o = as_buffer(output, "output", True)
        same_dtype(i, "input", o, "output")
        in_rows, out_rows = rows(input, "input"), rows(output, "output")
        in_row = math.prod(input.shape[1:])
        out_row = math.prod(output.shape[1:])
        if in_row != out_row:
            raise InvalidArgument("rows of 'output' hold %d elements but rows of 'input' hold %d" % (out_row, in_row))
        n = self._size
        send = self._splits(input_split_sizes, in_rows, "input", "input_split_sizes")
        recv = self._splits(output_split_sizes, out_rows, "output", "output_split_sizes")
        sc, sd, rc, rd = (c_uint64 * n)(), (c_uint64 * n)(), (c_uint64 * n)(), (c_uint64 * n)()
        so = ro = 0
        for j in range(n):
            sc[j], sd[j] = send[j] * in_row, so
            rc[j], rd[j] = recv[j] * out_row, ro
            so += send[j] * in_row
            ro += recv[j] * out_row
        args = (i.ptr, sc, sd, i.dtype, o.ptr, rc, rd, o.dtype, h)
        if async_op:
            # The C side copies the count arrays; keeping them anyway costs nothing.
            return self._start(self._L.ecclAllToAllVAsync, args, (i.obj, o.obj, sc, sd, rc, rd), "all_to_all_v")
        self._L.ecclAllToAllV(*args)
        return None

    def barrier(self, async_op: bool = False) -> Optional[Work]:
        h = self.handle
        if async_op:
            return self._start(self._L.ecclBarrierAsync, (h,), None, "barrier")
        self._L.ecclBarrier(h)
        return None

    # point to point

    def send(self, tensor: Any, dst: int, tag: int = 0) -> None:
        """Sends ``tensor`` to rank ``dst``; returns when it has been handed over."""
        h = self.handle
        b = as_buffer(tensor, "tensor")
        self._L.ecclSendTagged(b.ptr, b.count, b.dtype, _rank_arg(dst, "dst"), _tag_arg(tag), h)

    def recv(self, tensor: Any, src: int, tag: int = 0) -> None:
        """Receives into ``tensor`` the next message from rank ``src`` with ``tag``."""
        h = self.handle
        b = as_buffer(tensor, "tensor", True)
        self._L.ecclRecvTagged(b.ptr, b.count, b.dtype, _rank_arg(src, "src"), _tag_arg(tag), h)

    def isend(self, tensor: Any, dst: int, tag: int = 0) -> Work:
        h = self.handle
        b = as_buffer(tensor, "tensor")
        return self._start(self._L.ecclIsend, (b.ptr, b.count, b.dtype, _rank_arg(dst, "dst"), _tag_arg(tag), h), b.obj,
                           "isend")

    def irecv(self, tensor: Any, src: int, tag: int = 0) -> Work:
        h = self.handle
        b = as_buffer(tensor, "tensor", True)
        return self._start(self._L.ecclIrecv, (b.ptr, b.count, b.dtype, _rank_arg(src, "src"), _tag_arg(tag), h), b.obj,
                           "irecv")

    def batch_isend_irecv(self, ops: Sequence[P2POp]) -> Work:
        """Starts every op together (one ``ecclBatchSendRecvAsync``); wait on the returned Work."""
        h = self.handle
        items = (_lib.SendRecvItem * len(ops))()
        refs = [items]
        for k, op in enumerate(ops):
            if not isinstance(op, P2POp):
                raise InvalidArgument("ops[%d] is %s, not an eccl.P2POp" % (k, type(op).__name__))
            if op.comm is not None and op.comm is not self:
                raise InvalidArgument("ops[%d] names another communicator" % k)
            b = as_buffer(op.tensor, "ops[%d].tensor" % k, not op.is_send)
            it = items[k]
            it.type, it.buf, it.count, it.dataType = op._kind, b.ptr, b.count, b.dtype
            it.remoteRank, it.tag = op.peer, op.tag
            reg = op.registration
            if reg is not None:
                if reg.comm is not self:
                    raise InvalidArgument("ops[%d].registration belongs to another communicator" % k)
                if not reg.covers(b):
                    raise InvalidArgument("ops[%d].registration does not hold ops[%d].tensor" % (k, k))
                it.memHandle = reg.handle
                refs.append(reg)
            refs.append(b.obj)
        return self._start(self._L.ecclBatchSendRecvAsync, (items, len(ops), h), refs, "batch_isend_irecv")

    # memory, health, teardown

    def register(self, tensor: Any) -> MemoryRegistration:
        """Registers ``tensor``'s memory once for repeated use (see :class:`MemoryRegistration`)."""
        h = self.handle
        b = as_buffer(tensor, "tensor", True)
        mh = c_void_p()
        self._L.ecclCommRegister(h, b.ptr, b.nbytes, byref(mh))
        reg = MemoryRegistration(self, mh.value, b)
        self._registrations.add(reg)
        return reg

    def async_error(self) -> Optional[EcclError]:
        """None while healthy, else an exception instance saying how the group broke (naming the
        rank and the reason): ``ConnectionClosed`` (a peer died or hung up), ``Aborted`` (an
        abort here or on a peer; a collective that timed out aborts the group too), ..."""
        e = c_int(0)
        self._L.ecclCommGetAsyncError(self.handle, byref(e))
        if e.value == 0:
            return None
        return make_error(e.value, _lib.last_error())

    def abort(self) -> None:
        """Fails every pending operation here and on every other rank; still destroy() after."""
        self._L.ecclCommAbort(self.handle)

    def revoke(self, reason: Optional[str] = None, failed: Sequence[int] = ()) -> None:
        """Revokes the communicator (a rank failed): every pending and later operation fails here
        and on every other rank, naming the failed ranks known here; ``failed`` are recorded as
        failed. It stays queryable (:meth:`failed_ranks`); recover with
        :meth:`eccl.ElasticGroup.recover`. Idempotent."""
        ranks = [int(r) for r in failed]
        arr = (c_int * len(ranks))(*ranks) if ranks else None
        self._L.ecclCommRevoke(self.handle, reason.encode() if reason else None, arr, len(ranks))

    def failed_ranks(self) -> List[int]:
        """Ranks known to have failed, ascending: seen by the heartbeat monitor (a closed
        connection, silence past ``ECCL_HEARTBEAT_TIMEOUT``, another rank's report) or named to
        :meth:`revoke`."""
        n = c_uint32(0)
        self._L.ecclCommGetFailedRanks(self.handle, None, 0, byref(n))
        while True:
            buf = (c_int * max(1, n.value))()
            cap = n.value
            self._L.ecclCommGetFailedRanks(self.handle, buf, cap, byref(n))
            if n.value <= cap:
                return [buf[i] for i in range(n.value)]

    def destroy(self) -> None:
        """Frees the communicator (idempotent; works when peers are gone). Releases every
        registration. On a borrowed communicator only detaches this wrapper. Refused
        (InvalidArgument, nothing changed) while an :class:`~eccl.Eplb` runs on it."""
        h = self._h
        if h is None:
            return
        if self._owned:
            self._L.ecclCommDestroy(h)
        self._h = None
        for reg in list(self._registrations):
            reg._released()
        _sweep_orphans(self._L)  # operations of a destroyed communicator have finished (failed)
        self._keepalive = None

    close = destroy

    def __repr__(self) -> str:
        state = "" if self._h else ", destroyed"
        return "<eccl.Communicator %r rank %d of %d%s%s>" % (self.name, self._rank, self._size,
                                                             ", borrowed" if not self._owned else "", state)


def init_from_env(name: str = "world", epoch: int = 0) -> Tuple[Communicator, "LaunchInfo", TcpStore]:
    """The launcher's world (torchrun, mpirun or srun variables): bootstraps the store (rank 0
    serves it) and builds communicator ``name`` of every rank over it.

    Returns (communicator, launch info, store). Destroy the communicator (and anything else
    built on the store) before closing the store: on rank 0 the store connection owns the
    served store.
    """
    from .launch import bootstrap

    info, store = bootstrap()
    try:
        comm = Communicator.from_store(store, name, info.rank, info.size, epoch)
    except BaseException:
        store.close()
        raise
    return comm, info, store


from .launch import LaunchInfo  # noqa: E402  (for the annotation above; launch does not import comm)
