"""A rank dies: the survivors get an error naming it, promptly, instead of hanging."""
import os
import time

import numpy as np
import pytest

import eccl
from _multiproc import run_ranks


def _rank_main(rank, size, address, extra):
    store = eccl.TcpStore.connect(address)
    comm = eccl.Communicator.from_store(store, "dead-rank-%d" % size, rank, size)
    comm.barrier()
    victim = size - 1
    if rank == victim:
        # Only once every other rank is through the barrier: leaving earlier would (rightly) fail
        # a barrier still in progress elsewhere.
        store.wait(["through/%d" % r for r in range(victim)])
        os._exit(1)  # no goodbye: like a crash
    store.set("through/%d" % rank, b"1")
    x = np.ones(1024, dtype=np.float32)
    t0 = time.monotonic()
    try:
        comm.all_reduce(x)
    except (eccl.ConnectionClosed, eccl.Aborted) as e:
        elapsed = time.monotonic() - t0
        message = str(e)
    else:
        raise AssertionError("all_reduce succeeded without rank 2")
    # The group stays broken, and says so.
    later = comm.async_error()
    comm.destroy()  # works with a peer gone
    store.close()
    return {"elapsed": elapsed, "message": message, "async": repr(later), "async_type": type(later).__name__}


@pytest.mark.parametrize("size", [2, 3])
def test_survivors_get_an_error_naming_the_dead_rank(size):
    # ECCL_TIMEOUT=60: a detection that relied on the deadline would take 60 s (and be a Timeout).
    victim = size - 1
    results = run_ranks(_rank_main, size, env={"ECCL_TIMEOUT": "60"}, allow_exit=[victim])
    for rank in range(victim):
        r = results[rank]
        assert "rank %d" % victim in r["message"], "rank %d: %s" % (rank, r["message"])
        assert r["elapsed"] < 50, "rank %d took %.1f s" % (rank, r["elapsed"])
        assert r["async"] != "None", "rank %d: async_error() is None after the failure" % rank
        if size == 2:
            # The only peer hung up: that is a closed connection, not an abort (with three ranks
            # a survivor may hear it first as the other survivor's abort relay).
            assert r["async_type"] == "ConnectionClosed", "rank %d: %s" % (rank, r["async"])
