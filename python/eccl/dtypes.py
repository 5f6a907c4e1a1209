"""Element types: torch and numpy dtypes <-> ``ecclDataType_t``.

torch and numpy are optional here: a table is built only for a library that is already imported
(or when asked for it), so ``import eccl`` stays cheap for numpy-only users. bfloat16 exists only
in torch; the fp8 types only in torch builds that have them (torch >= 2.1).

This module does not load the C library.
"""
from __future__ import annotations

import enum
import sys
from typing import Any, Dict, Optional


class DataType(enum.IntEnum):
    """``ecclDataType_t``."""

    INT8 = 0
    INT32 = 1
    INT64 = 2
    FLOAT16 = 3
    BFLOAT16 = 4
    FLOAT32 = 5
    FLOAT64 = 6
    UINT8 = 7
    INT16 = 8
    BOOL = 9  # one byte; sum/max reduce as "or", prod/min as "and"
    FLOAT8_E4M3 = 10  # moves and gathers only, no reductions
    FLOAT8_E5M2 = 11


ITEM_SIZE = {
    DataType.INT8: 1, DataType.INT32: 4, DataType.INT64: 8, DataType.FLOAT16: 2,
    DataType.BFLOAT16: 2, DataType.FLOAT32: 4, DataType.FLOAT64: 8, DataType.UINT8: 1,
    DataType.INT16: 2, DataType.BOOL: 1, DataType.FLOAT8_E4M3: 1, DataType.FLOAT8_E5M2: 1,
}

# The names the EPLB configuration uses (eccl_eplb.h).
NAMES = {
    DataType.FLOAT32: "float32", DataType.FLOAT16: "float16", DataType.BFLOAT16: "bfloat16",
    DataType.FLOAT64: "float64", DataType.INT8: "int8", DataType.UINT8: "uint8",
    DataType.INT16: "int16", DataType.INT32: "int32", DataType.INT64: "int64",
    DataType.BOOL: "bool", DataType.FLOAT8_E4M3: "float8_e4m3", DataType.FLOAT8_E5M2: "float8_e5m2",
}

# And back: config name -> DataType.
BY_NAME = {name: dt for dt, name in NAMES.items()}

# Types eccl can only move, not reduce.
NO_REDUCTION = frozenset({DataType.FLOAT8_E4M3, DataType.FLOAT8_E5M2})

_TORCH_NAMES = {
    "float32": DataType.FLOAT32, "float16": DataType.FLOAT16, "bfloat16": DataType.BFLOAT16,
    "float64": DataType.FLOAT64, "int8": DataType.INT8, "uint8": DataType.UINT8,
    "int16": DataType.INT16, "int32": DataType.INT32, "int64": DataType.INT64, "bool": DataType.BOOL,
    "float8_e4m3fn": DataType.FLOAT8_E4M3, "float8_e5m2": DataType.FLOAT8_E5M2,
}
_NUMPY_NAMES = ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")

# Lookup tables keyed by the dtype objects themselves: one dict lookup per call on the hot path.
_from_torch: Optional[Dict[Any, DataType]] = None
_from_numpy: Optional[Dict[Any, DataType]] = None


def torch_table() -> Dict[Any, DataType]:
    """torch dtype -> DataType (imports torch)."""
    global _from_torch
    if _from_torch is None:
        import torch

        # getattr: float8 dtypes are missing before torch 2.1 and are then simply not supported.
        _from_torch = {getattr(torch, n): t for n, t in _TORCH_NAMES.items() if hasattr(torch, n)}
    return _from_torch


def numpy_table() -> Dict[Any, DataType]:
    """numpy dtype -> DataType (imports numpy). Native byte order only."""
    global _from_numpy
    if _from_numpy is None:
        import numpy as np

        _from_numpy = {np.dtype(n): _TORCH_NAMES[n] for n in _NUMPY_NAMES}
    return _from_numpy


def from_dtype(dtype: Any) -> Optional[DataType]:
    """The DataType of a torch dtype, a numpy dtype (or anything ``numpy.dtype()`` accepts, e.g.
    ``"int64"``), or None when eccl has no such type."""
    if isinstance(dtype, DataType):
        return dtype
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(dtype, torch.dtype):
        return torch_table().get(dtype)
    if isinstance(dtype, str) and dtype in _TORCH_NAMES and dtype not in _NUMPY_NAMES:
        # "bfloat16" and the fp8 names have no numpy dtype: accept them by name.
        return _TORCH_NAMES[dtype]
    import numpy as np

    try:
        return numpy_table().get(np.dtype(dtype))
    except TypeError:
        return None


def to_eccl(dtype: Any) -> DataType:
    """Like :func:`from_dtype` but raises ``InvalidArgument`` for unsupported types."""
    t = from_dtype(dtype)
    if t is None:
        from .errors import InvalidArgument

        raise InvalidArgument("eccl has no data type for %s; supported: %s" % (dtype, ", ".join(NAMES.values())))
    return t


def to_torch(dtype: DataType):
    """The torch dtype of a DataType (imports torch). ``InvalidArgument`` when this torch lacks it."""
    dtype = DataType(dtype)
    for k, v in torch_table().items():
        if v == dtype:
            return k
    from .errors import InvalidArgument

    raise InvalidArgument("this torch build has no dtype for %s" % NAMES[dtype])


def to_numpy(dtype: DataType):
    """The numpy dtype of a DataType. ``InvalidArgument`` for bfloat16 and fp8 (numpy lacks them)."""
    dtype = DataType(dtype)
    for k, v in numpy_table().items():
        if v == dtype:
            return k
    from .errors import InvalidArgument

    raise InvalidArgument("numpy has no dtype for %s (use a torch tensor)" % NAMES[dtype])


def name(dtype: Any) -> str:
    """The EPLB configuration's name of a dtype, e.g. ``"bfloat16"``."""
    return NAMES[to_eccl(dtype)]
