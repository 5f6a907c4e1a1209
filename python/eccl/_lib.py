"""Finding and loading the C library, and the ctypes declaration of every C function.

The library is loaded on first use (``load()``), not at import, so ``import eccl`` works (and
``eccl.dtypes``/``eccl.errors`` are usable) on a machine without it.

Search order (the first match wins):
  1. ``$ECCL_LIBRARY_PATH``: a directory holding ``libeccl_eplb.so``, or the ``.so`` itself.
     When set, nothing else is tried: an explicit setting that is wrong is an error, not a
     reason to silently pick up another build.
  2. ``_lib/libeccl_eplb.so`` next to this package, then the library directory that
     ``cmake --install`` puts this package under (``<prefix>/lib/python3.X/dist-packages/eccl``
     -> ``<prefix>/lib``).
  3. An in-tree CMake build: ``build/eplb/libeccl_eplb.so`` in this package's ancestors, else any
     ``build*/**/libeccl_eplb.so*`` there (``build/`` preferred; sanitizer builds last, since an
     uninstrumented interpreter cannot load them).
  4. ``ctypes.util.find_library("eccl_eplb")`` (the system's library path).

libeccl_eplb.so needs libeccl_groups.so (which holds eccl.h's functions) and the layers below;
the dynamic loader finds them through the libraries' RUNPATH (the build tree's directories, or
``$ORIGIN`` in an install). Every eccl.h symbol resolves through the one libeccl_eplb handle,
since a handle's lookups also search the libraries it depends on.

The GIL: ``ctypes.CDLL`` (unlike ``PyDLL``) releases the GIL for the duration of each foreign
call, so a thread blocked in a collective, a store wait or ``ecclWorkWait`` does not stop other
Python threads. Keep it a CDLL.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import List, Optional

from .errors import make_error

LIBRARY_NAME = "libeccl_eplb.so"
# The layers libeccl_eplb.so links, bottom first: preloaded from its directory when the loader
# cannot find them by itself (a copied install without $ORIGIN RUNPATH).
_DEPENDENCIES = ("libeccl_base.so", "libeccl_transport.so", "libeccl_comm.so", "libeccl_groups.so")

MAX_TAG = (1 << 62) - 1  # ECCL_MAX_TAG
ROOT_INFO_BYTES = 256  # ECCL_ROOT_INFO_BYTES

# Opaque handles (ecclComm_t, ecclWork_t, ...) are plain pointers.
Handle = c_void_p
HandleOut = POINTER(c_void_p)


class RecoveryInfoStruct(ctypes.Structure):
    """``ecclRecoveryInfo``."""

    _fields_ = [
        ("oldEpoch", c_uint64),
        ("epoch", c_uint64),
        ("oldRank", c_int32),
        ("rank", c_int32),
        ("oldSize", c_int32),
        ("size", c_int32),
        ("failed", c_int32),
        ("rounds", c_int32),
        ("agreeSeconds", ctypes.c_double),
        ("buildSeconds", ctypes.c_double),
    ]


# ecclEplbWeightSourceFn: int (*)(void* user, int32_t layer, int32_t expert, void* const* tensors)
WeightSourceFn = ctypes.CFUNCTYPE(c_int, c_void_p, c_int32, c_int32, POINTER(c_void_p))


class SendRecvItem(ctypes.Structure):
    """``ecclSendRecvItem``."""

    _fields_ = [
        ("type", c_int),
        ("buf", c_void_p),
        ("count", c_uint64),
        ("dataType", c_int),
        ("remoteRank", c_uint32),
        ("memHandle", c_void_p),
        ("tag", c_uint64),
    ]


class RootInfo(ctypes.Structure):
    """``ecclRootInfo`` (bytes, not c_char, so embedded NULs survive)."""

    _fields_ = [("internal", ctypes.c_ubyte * ROOT_INFO_BYTES)]


class LaunchInfoStruct(ctypes.Structure):
    """``ecclLaunchInfo``."""

    _fields_ = [
        ("launcher", ctypes.c_char * 16),
        ("rank", c_int32),
        ("size", c_int32),
        ("localRank", c_int32),
        ("localSize", c_int32),
        ("storeHost", ctypes.c_char * 256),
        ("storePort", c_uint16),
        ("servesStore", c_int32),
    ]


class EplbInfo(ctypes.Structure):
    """``ecclEplbInfo``."""

    _fields_ = [("layers", c_int32), ("experts", c_int32), ("slots", c_int32), ("ranks", c_int32), ("rank", c_int32)]


_I = c_int  # ecclResult_t, ecclDataType_t, ecclRedOp_t: C enums are ints
_P = c_void_p

# name -> argtypes; every function returns ecclResult_t and is checked by _errcheck.
_FUNCTIONS = {
    # eccl.h: communicators
    "ecclGetRootInfo": [POINTER(RootInfo)],
    "ecclCommInitRootInfo": [c_uint32, POINTER(RootInfo), c_uint32, HandleOut],
    "ecclCommInitFromStore": [c_char_p, c_char_p, c_uint64, c_uint32, c_uint32, HandleOut],
    "ecclCommInitWithStore": [Handle, c_char_p, c_uint64, c_uint32, c_uint32, HandleOut],
    "ecclCommRank": [Handle, POINTER(c_uint32)],
    "ecclCommSize": [Handle, POINTER(c_uint32)],
    # blocking operations
    "ecclAllGather": [_P, _P, c_uint64, _I, Handle],
    "ecclAllReduce": [_P, _P, c_uint64, _I, _I, Handle],
    "ecclBroadcast": [_P, c_uint64, _I, c_uint32, Handle],
    "ecclReduceScatter": [_P, _P, c_uint64, _I, _I, Handle],
    "ecclAllToAllV": [_P, POINTER(c_uint64), POINTER(c_uint64), _I, _P, POINTER(c_uint64), POINTER(c_uint64), _I, Handle],
    "ecclSend": [_P, c_uint64, _I, c_uint32, Handle],
    "ecclRecv": [_P, c_uint64, _I, c_uint32, Handle],
    "ecclSendTagged": [_P, c_uint64, _I, c_uint32, c_uint64, Handle],
    "ecclRecvTagged": [_P, c_uint64, _I, c_uint32, c_uint64, Handle],
    "ecclBatchSendRecv": [POINTER(SendRecvItem), c_uint32, Handle],
    "ecclBarrier": [Handle],
    # async work
    "ecclIsend": [_P, c_uint64, _I, c_uint32, c_uint64, Handle, HandleOut],
    "ecclIrecv": [_P, c_uint64, _I, c_uint32, c_uint64, Handle, HandleOut],
    "ecclBatchSendRecvAsync": [POINTER(SendRecvItem), c_uint32, Handle, HandleOut],
    "ecclAllGatherAsync": [_P, _P, c_uint64, _I, Handle, HandleOut],
    "ecclAllReduceAsync": [_P, _P, c_uint64, _I, _I, Handle, HandleOut],
    "ecclBroadcastAsync": [_P, c_uint64, _I, c_uint32, Handle, HandleOut],
    "ecclReduceScatterAsync": [_P, _P, c_uint64, _I, _I, Handle, HandleOut],
    "ecclAllToAllVAsync": [_P, POINTER(c_uint64), POINTER(c_uint64), _I, _P, POINTER(c_uint64), POINTER(c_uint64), _I,
                           Handle, HandleOut],
    "ecclBarrierAsync": [Handle, HandleOut],
    "ecclWorkTest": [Handle, POINTER(c_int)],
    "ecclWorkWait": [Handle, c_int64],
    "ecclWorkCancel": [Handle],
    "ecclWorkFree": [Handle],
    # registrations, abort, destroy, health
    "ecclCommRegister": [Handle, _P, c_size_t, HandleOut],
    "ecclCommDeregister": [Handle, Handle],
    "ecclCommAbort": [Handle],
    "ecclCommDestroy": [Handle],
    "ecclCommGetAsyncError": [Handle, POINTER(c_int)],
    "ecclCommRevoke": [Handle, c_char_p, POINTER(c_int), c_uint32],
    "ecclCommGetFailedRanks": [Handle, POINTER(c_int), c_uint32, POINTER(c_uint32)],
    # store
    "ecclStoreServerStart": [c_char_p, c_uint16, HandleOut],
    "ecclStoreServerAddress": [Handle, _P, c_size_t],
    "ecclStoreServerStop": [Handle],
    "ecclStoreConnect": [c_char_p, c_int64, HandleOut],
    "ecclStoreSet": [Handle, c_char_p, c_char_p, c_size_t],
    "ecclStoreGet": [Handle, c_char_p, _P, c_size_t, POINTER(c_size_t), c_int64],
    "ecclStoreAdd": [Handle, c_char_p, c_int64, POINTER(c_int64)],
    "ecclStoreWait": [Handle, POINTER(c_char_p), c_uint32, c_int64],
    "ecclStoreDelete": [Handle, c_char_p, POINTER(c_int)],
    "ecclStoreClose": [Handle],
    # launchers
    "ecclLaunchInfoFromEnv": [POINTER(LaunchInfoStruct)],
    "ecclBootstrapFromEnv": [POINTER(LaunchInfoStruct), HandleOut],
    # elastic groups
    "ecclElasticJoin": [Handle, c_char_p, c_uint64, c_uint32, c_uint32, HandleOut],
    "ecclElasticComm": [Handle, HandleOut],
    "ecclElasticEpoch": [Handle, POINTER(c_uint64)],
    "ecclElasticPrepare": [Handle, c_uint32, POINTER(c_int32), c_uint32],
    "ecclElasticNextRank": [Handle, POINTER(c_int32)],
    "ecclElasticStandbyComm": [Handle, HandleOut],
    "ecclElasticSwitch": [Handle, POINTER(c_int)],
    "ecclElasticDestroy": [Handle],
    "ecclElasticRecover": [Handle, POINTER(c_int32), c_uint32, POINTER(RecoveryInfoStruct)],
    # eccl_eplb.h
    "ecclEplbCreate": [Handle, c_char_p, POINTER(c_void_p), POINTER(c_uint64), HandleOut],
    "ecclEplbRecord": [Handle, c_int32, _P, _I, c_uint64],
    "ecclEplbBeforeForward": [Handle],
    "ecclEplbAfterForward": [Handle, POINTER(c_int32)],
    "ecclEplbGetMaps": [Handle, c_int32, _P, _P],
    "ecclEplbGetPlacement": [Handle, _P, c_uint64],
    "ecclEplbExportMap": [Handle, _P, c_size_t, POINTER(c_size_t)],
    "ecclEplbApplyMap": [Handle, c_char_p],
    "ecclEplbTakeReport": [Handle, _P, c_size_t, POINTER(c_size_t)],
    "ecclEplbElasticStep": [Handle, Handle, c_uint32, POINTER(c_int32), c_uint32, POINTER(c_int), POINTER(c_int)],
    "ecclEplbJoin": [Handle, c_char_p, c_uint64, c_uint32, c_uint32, c_char_p, POINTER(c_void_p), POINTER(c_uint64),
                     HandleOut, HandleOut],
    "ecclEplbDestroy": [Handle],
    "ecclEplbGetInfo": [Handle, _P],
    "ecclEplbPlan": [c_char_p, _P, c_size_t, POINTER(c_size_t)],
    "ecclEplbWriteCheckpoint": [c_char_p, c_char_p, WeightSourceFn, c_void_p],
    "ecclEplbRecover": [Handle, Handle, c_char_p, WeightSourceFn, c_void_p, POINTER(RecoveryInfoStruct)],
    "ecclEplbRecoveryReport": [Handle, _P, c_size_t, POINTER(c_size_t)],
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def _errcheck(result, func, args):
    # Runs in the calling thread right after the call, so the thread-local last-error text is
    # still this call's.
    if result != 0:
        raise make_error(result, last_error())
    return result


def last_error() -> str:
    """``ecclGetLastError()`` of this thread (empty before any failure)."""
    raw = load().ecclGetLastError()
    return raw.decode("utf-8", "replace") if raw else ""


def error_string(code: int) -> str:
    """``ecclGetErrorString(code)``."""
    raw = load().ecclGetErrorString(code)
    return raw.decode("utf-8", "replace") if raw else ""


def _declare(lib: ctypes.CDLL) -> None:
    lib.ecclGetLastError.argtypes = []
    lib.ecclGetLastError.restype = c_char_p
    lib.ecclGetErrorString.argtypes = [c_int]
    lib.ecclGetErrorString.restype = c_char_p
    missing = []
    for name, argtypes in _FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.argtypes = argtypes
        fn.restype = c_int
        fn.errcheck = _errcheck
    if missing:
        raise ImportError("%s lacks %s: an older or partial build?" % (lib._name, ", ".join(missing)))


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _tree_candidates() -> List[Path]:
    """In-tree builds in this package's ancestors (python/eccl -> python -> repository root)."""
    out: List[Path] = []
    for parent in list(_package_dir().parents)[:3]:
        exact = parent / "build" / "eplb" / LIBRARY_NAME
        if exact.is_file():
            out.append(exact)
    if out:
        return out
    for parent in list(_package_dir().parents)[:3]:
        found = [p for p in parent.glob("build*/**/" + LIBRARY_NAME + "*") if p.is_file()]

        def rank(p: Path):
            top = p.relative_to(parent).parts[0]
            sanitized = any(s in top for s in ("asan", "tsan", "sanitize", "fuzz"))
            return (top != "build", sanitized, len(p.name), str(p))

        out.extend(sorted(found, key=rank))
    return out


def candidates() -> List[str]:
    """Every place searched, in order (for the error message and for tests)."""
    env = os.environ.get("ECCL_LIBRARY_PATH")
    if env:
        p = Path(env)
        return [str(p / LIBRARY_NAME if p.is_dir() else p)]
    places = [str(_package_dir() / "_lib" / LIBRARY_NAME), str(_package_dir().parents[2] / LIBRARY_NAME)]
    places += [str(p) for p in _tree_candidates()]
    return places


def _open(path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as first:
        # A copied install may lack $ORIGIN RUNPATH: load the layers below from the same
        # directory first (RTLD_GLOBAL makes their symbols visible), then retry.
        d = Path(path).parent
        deps = [d / n for n in _DEPENDENCIES if (d / n).exists()]
        if not deps:
            raise first
        for dep in deps:
            ctypes.CDLL(str(dep), mode=ctypes.RTLD_GLOBAL)
        return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def load() -> ctypes.CDLL:
    """The loaded, declared library (loaded once per process; thread-safe).

    Raises ImportError naming every place searched when none has it, or the loader's error when
    the library exists but cannot be loaded.
    """
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        env_set = bool(os.environ.get("ECCL_LIBRARY_PATH"))
        path = None
        for c in candidates():
            tried.append(c)
            if Path(c).is_file():
                path = c
                break
        if path is None and not env_set:
            found = ctypes.util.find_library("eccl_eplb")
            tried.append('ctypes.util.find_library("eccl_eplb")')
            path = found
        if path is None:
            hint = ("$ECCL_LIBRARY_PATH is set, so nothing else was tried" if env_set else
                    "build eccl (the in-tree build puts it in build/eplb/) or set $ECCL_LIBRARY_PATH")
            raise ImportError("eccl: %s not found; searched:\n  %s\n(%s)" % (LIBRARY_NAME, "\n  ".join(tried), hint))
        try:
            lib = _open(path)
        except OSError as e:
            raise ImportError("eccl: cannot load %s: %s" % (path, e)) from e
        _declare(lib)
        _lib = lib
        return lib


def library_path() -> str:
    """The path of the loaded library (loads it)."""
    return load()._name


def seconds_to_ms(timeout: Optional[float], what: str = "timeout") -> int:
    """A timeout in seconds (None = the default) as the C API's milliseconds (-1 = default)."""
    if timeout is None:
        return -1
    if timeout < 0:
        from .errors import InvalidArgument

        raise InvalidArgument("%s must be >= 0 seconds or None (the default), got %r" % (what, timeout))
    return int(round(timeout * 1000.0))
