"""eccl for Python: elastic collective communication and EPLB for MoE serving on CPU tensors.

A pure-Python package over eccl's C API (eccl.h, eccl_eplb.h) through ctypes. Why ctypes and
not a compiled extension:

* it is the same C API that pyhccl-style users already drive through ctypes, so there is one
  binding surface to keep correct, not two;
* nothing is compiled against a particular Python version or ABI: one package works with any
  CPython 3.8+ next to any build of the C library;
* a ctypes call costs on the order of a microsecond, and with the argument checks a collective
  stays within a ~5 µs per-call budget, small next to the communication itself.

``ctypes.CDLL`` releases the GIL during every C call, so blocking operations do not stall other
Python threads. The C library is found and loaded on first use (see :mod:`eccl._lib`; set
``$ECCL_LIBRARY_PATH`` to choose one); importing eccl does not need it.

Quick start (under torchrun, mpirun or srun)::

    import torch, eccl
    comm, info, store = eccl.init_from_env()
    x = torch.ones(4)
    comm.all_reduce(x)                     # in place, like torch.distributed
    comm.destroy(); store.close()          # the store last (rank 0 serves it)
"""
from .comm import (
    Communicator,
    MemoryRegistration,
    P2POp,
    ReduceOp,
    Work,
    batch_isend_irecv,
    get_root_info,
    init_from_env,
    irecv,
    isend,
)
from .dtypes import DataType
from .elastic import ElasticGroup, RecoveryInfo
from .eplb import Eplb, loads_json, plan, write_checkpoint
from .errors import (
    Aborted,
    ConnectionClosed,
    EcclError,
    EcclSystemError,
    InternalError,
    InvalidArgument,
    RemoteError,
    Result,
    Timeout,
)
from .launch import LaunchInfo, bootstrap, launch_info_from_env
from .store import TcpStore, TcpStoreServer

MAX_TAG = (1 << 62) - 1  # ECCL_MAX_TAG: the largest P2P tag


class Group:
    """Stateless process groups by name: any number per process, each built from (store, name,
    epoch, rank, size) and destroyed on its own. A group is its :class:`Communicator`."""

    @staticmethod
    def create(store: TcpStore, name: str, rank: int, size: int, epoch: int = 0) -> Communicator:
        """Every rank: builds group ``name`` at ``epoch`` (same as ``Communicator.from_store``)."""
        return Communicator.from_store(store, name, rank, size, epoch)


def load_library() -> str:
    """Loads the C library now (it is otherwise loaded on first use) and returns its path.
    Raises ImportError naming every place searched when it is not found."""
    from . import _lib

    return _lib.library_path()


__all__ = [
    "Aborted", "Communicator", "ConnectionClosed", "DataType", "EcclError", "EcclSystemError", "ElasticGroup",
    "Eplb", "Group", "InternalError", "InvalidArgument", "LaunchInfo", "MAX_TAG", "MemoryRegistration", "P2POp", "ReduceOp",
    "RemoteError", "Result", "TcpStore", "TcpStoreServer", "Timeout", "Work", "batch_isend_irecv", "bootstrap",
    "get_root_info", "init_from_env", "irecv", "isend", "launch_info_from_env", "load_library", "loads_json",
    "plan", "RecoveryInfo", "write_checkpoint",
]
