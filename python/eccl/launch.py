"""Rank, size and the store from the environment a launcher set up (torchrun, mpirun, srun).

See ``ecclLaunchInfoFromEnv`` in eccl.h for the variables read and their order. A missing or
malformed variable raises ``InvalidArgument`` naming it.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Tuple

from . import _lib
from .store import TcpStore


@dataclass(frozen=True)
class LaunchInfo:
    launcher: str  # "torchrun", "openmpi" or "slurm"
    rank: int
    size: int
    local_rank: int
    local_size: int
    store_host: str
    store_port: int
    serves_store: bool  # this process (rank 0) serves the store

    @property
    def store_address(self) -> str:
        """``"host:port"`` of the store (brackets around an IPv6 host)."""
        host = self.store_host
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        return "%s:%d" % (host, self.store_port)

    @classmethod
    def _from_struct(cls, s: _lib.LaunchInfoStruct) -> "LaunchInfo":
        return cls(
            launcher=s.launcher.decode(),
            rank=s.rank,
            size=s.size,
            local_rank=s.localRank,
            local_size=s.localSize,
            store_host=s.storeHost.decode(),
            store_port=s.storePort,
            serves_store=bool(s.servesStore),
        )


def launch_info_from_env() -> LaunchInfo:
    """Reads the launcher's variables (nothing is started or connected)."""
    s = _lib.LaunchInfoStruct()
    _lib.load().ecclLaunchInfoFromEnv(ctypes.byref(s))
    return LaunchInfo._from_struct(s)


def bootstrap() -> Tuple[LaunchInfo, TcpStore]:
    """Reads the launcher's variables; rank 0 serves the store (unless ``$ECCL_STORE_ADDR`` names
    one the launcher runs); every rank connects. Blocks until connected (the store timeout).

    The returned store owns the served store on rank 0: close it after everything built on it.
    """
    s = _lib.LaunchInfoStruct()
    h = ctypes.c_void_p()
    _lib.load().ecclBootstrapFromEnv(ctypes.byref(s), ctypes.byref(h))
    info = LaunchInfo._from_struct(s)
    return info, TcpStore(h.value, info.store_address)
