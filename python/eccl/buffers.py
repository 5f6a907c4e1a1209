"""Turning a torch tensor or numpy array into what the C API takes, without copying.

A :class:`Buffer` is (address, element count, ``DataType``) plus the object itself, so whoever
holds the Buffer keeps the memory alive. Only CPU, contiguous, native-byte-order memory is
accepted; anything else raises :class:`~eccl.errors.InvalidArgument` (a ``ValueError``) whose
message names the argument, e.g. "tensor 'output' is not contiguous".

The checks are a few attribute reads and a dict lookup (well under a microsecond), so they run
on every call instead of being trusted to the caller.
"""
from __future__ import annotations

import sys
from typing import Any, NamedTuple

from .dtypes import ITEM_SIZE, NAMES, numpy_table, torch_table
from .errors import InvalidArgument


class Buffer(NamedTuple):
    ptr: int  # address of the first element (0 only when count == 0)
    count: int  # elements
    # The ecclDataType_t value as a plain int: ctypes converts an IntEnum member through
    # __index__, which costs about a microsecond per call (as much as the C call itself).
    dtype: int
    obj: Any  # the tensor or array: a reference that keeps the memory alive

    @property
    def nbytes(self) -> int:
        return self.count * ITEM_SIZE[self.dtype]


def as_buffer(obj: Any, name: str, writable: bool = False) -> Buffer:
    """The memory of ``obj`` (a CPU torch tensor or a numpy array) as a Buffer, no copy.

    ``name`` is the argument's name for messages; ``writable`` marks memory eccl writes into
    (a read-only numpy array is refused then).
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return _torch_buffer(torch, obj, name)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _numpy_buffer(obj, name, writable)
    raise InvalidArgument("'%s' must be a torch.Tensor or a numpy.ndarray, not %s" % (name, type(obj).__name__))


def _torch_buffer(torch: Any, t: Any, name: str) -> Buffer:
    if not t.is_cpu:  # (t.device.type builds a device object: several times slower)
        raise InvalidArgument("tensor '%s' is on device '%s': eccl moves CPU memory only" % (name, t.device))
    if t.layout != torch.strided:
        raise InvalidArgument("tensor '%s' has layout %s: eccl needs a dense (strided) tensor" % (name, t.layout))
    if not t.is_contiguous():
        raise InvalidArgument("tensor '%s' is not contiguous (shape %s, strides %s): pass .contiguous()"
                              % (name, tuple(t.shape), t.stride()))
    dt = torch_table().get(t.dtype)
    if dt is None:
        raise InvalidArgument("tensor '%s' has dtype %s, which eccl does not support" % (name, t.dtype))
    n = t.numel()
    return Buffer(t.data_ptr() if n else 0, n, int(dt), t)


def _numpy_buffer(a: Any, name: str, writable: bool) -> Buffer:
    if not a.flags.c_contiguous:
        raise InvalidArgument("array '%s' is not C-contiguous (shape %s, strides %s): pass numpy.ascontiguousarray()"
                              % (name, a.shape, a.strides))
    if writable and not a.flags.writeable:
        raise InvalidArgument("array '%s' is read-only but eccl writes into it" % name)
    dt = numpy_table().get(a.dtype)
    if dt is None:
        raise InvalidArgument("array '%s' has dtype %s, which eccl does not support" % (name, a.dtype))
    n = a.size
    return Buffer(a.__array_interface__["data"][0] if n else 0, n, int(dt), a)


def same_dtype(a: Buffer, a_name: str, b: Buffer, b_name: str) -> None:
    """Raises unless both buffers hold the same element type."""
    if a.dtype != b.dtype:
        raise InvalidArgument("'%s' is %s but '%s' is %s" % (a_name, NAMES[a.dtype], b_name, NAMES[b.dtype]))


def rows(obj: Any, name: str) -> int:
    """Length of dimension 0 (what all_to_all splits count), for a tensor or array."""
    shape = obj.shape
    if len(shape) == 0:
        raise InvalidArgument("'%s' is 0-dimensional: all_to_all_v splits along dimension 0" % name)
    return int(shape[0])


def as_tensor_like(obj: Any):
    """``obj`` as a torch tensor sharing its memory (numpy arrays through torch.from_numpy)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj
    return torch.from_numpy(obj)
