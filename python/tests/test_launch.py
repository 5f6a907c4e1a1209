"""Launcher environments (torchrun, Open MPI, Slurm) read by ecclLaunchInfoFromEnv, and a real
2-process init_from_env under torchrun-style variables. Setting os.environ also sets the C
environment (CPython calls putenv), so the C side sees monkeypatched values."""
import os

import numpy as np
import pytest

import eccl
from _multiproc import free_port, run_ranks

_PREFIXES = ("SLURM_", "OMPI_", "PMI_", "PMIX_")
_NAMES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "ECCL_STORE_ADDR",
          "ECCL_STORE_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    """No launcher variables (the suite itself may run under Slurm or mpirun)."""
    for k in list(os.environ):
        if k in _NAMES or k.startswith(_PREFIXES):
            monkeypatch.delenv(k)
    return monkeypatch


def _set(mp, **env):
    for k, v in env.items():
        mp.setenv(k, v)


def test_torchrun(clean_env):
    _set(clean_env, RANK="3", WORLD_SIZE="8", LOCAL_RANK="1", LOCAL_WORLD_SIZE="4", MASTER_ADDR="10.1.2.3",
         MASTER_PORT="29400")
    i = eccl.launch_info_from_env()
    assert (i.launcher, i.rank, i.size, i.local_rank, i.local_size) == ("torchrun", 3, 8, 1, 4)
    assert (i.store_host, i.store_port, i.serves_store) == ("10.1.2.3", 29401, False)
    assert i.store_address == "10.1.2.3:29401"
    clean_env.setenv("RANK", "0")
    assert eccl.launch_info_from_env().serves_store is True
    clean_env.setenv("ECCL_STORE_PORT", "31000")
    assert eccl.launch_info_from_env().store_port == 31000
    clean_env.setenv("ECCL_STORE_ADDR", "store.example:4242")
    i = eccl.launch_info_from_env()
    assert (i.store_host, i.store_port, i.serves_store) == ("store.example", 4242, False)


def test_openmpi_one_node(clean_env):
    _set(clean_env, OMPI_COMM_WORLD_RANK="1", OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_LOCAL_RANK="1",
         OMPI_COMM_WORLD_LOCAL_SIZE="2")
    i = eccl.launch_info_from_env()
    assert (i.launcher, i.rank, i.size, i.local_rank, i.local_size) == ("openmpi", 1, 2, 1, 2)
    assert (i.store_host, i.store_port, i.serves_store) == ("127.0.0.1", 29501, False)


def test_slurm_first_host(clean_env):
    _set(clean_env, SLURM_PROCID="5", SLURM_NTASKS="6", SLURM_LOCALID="2", SLURM_STEP_NODELIST="node[03-05],gpu1")
    i = eccl.launch_info_from_env()
    assert (i.launcher, i.rank, i.size, i.local_rank) == ("slurm", 5, 6, 2)
    assert (i.store_host, i.store_port, i.serves_store) == ("node03", 29501, False)


def test_order_torchrun_before_slurm(clean_env):
    _set(clean_env, RANK="0", WORLD_SIZE="1", SLURM_PROCID="5", SLURM_NTASKS="6", SLURM_STEP_NODELIST="n1")
    assert eccl.launch_info_from_env().launcher == "torchrun"


def test_missing_and_malformed_variables_are_named(clean_env):
    with pytest.raises(eccl.InvalidArgument, match="WORLD_SIZE"):
        eccl.launch_info_from_env()  # nothing set at all
    _set(clean_env, OMPI_COMM_WORLD_RANK="0", OMPI_COMM_WORLD_SIZE="2")
    with pytest.raises(eccl.InvalidArgument, match="OMPI_COMM_WORLD_LOCAL_RANK"):
        eccl.launch_info_from_env()
    for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
        clean_env.delenv(k)
    _set(clean_env, RANK="abc", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    with pytest.raises(eccl.InvalidArgument, match=r"\$RANK='abc'"):
        eccl.launch_info_from_env()


def _env_rank(rank, size, address, extra):
    comm, info, store = eccl.init_from_env()
    assert (info.launcher, info.rank, info.size) == ("torchrun", rank, size)
    assert info.serves_store == (rank == 0)
    assert info.store_port == extra["store_port"]
    x = np.full(4, rank + 1, dtype=np.int32)
    comm.all_reduce(x)
    comm.destroy()
    # Rank 0's store connection owns the served store: it closes last, once every rank is done.
    store.set("done/%d" % rank, "1")
    if rank == 0:
        store.wait(["done/%d" % r for r in range(size)])
    store.close()
    return x.tolist()


def test_init_from_env_two_processes():
    store_port = free_port()
    base = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            # eccl's store goes on MASTER_PORT + 1 (torch.distributed's store would hold MASTER_PORT)
            "MASTER_PORT": str(store_port - 1)}
    per_rank = [{"RANK": str(r), "LOCAL_RANK": str(r)} for r in range(2)]
    results = run_ranks(_env_rank, 2, extra={"store_port": store_port}, env=base, per_rank_env=per_rank, store=False)
    assert results == [[3, 3, 3, 3]] * 2
