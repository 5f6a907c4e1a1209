"""Surviving a rank crash from Python: the survivors' operations fail naming the dead rank,
failed_ranks() says which, ElasticGroup.recover() rebuilds the group without it, and
Eplb.recover() puts back the experts only it held (from an eccl checkpoint file, or from the
engine's own source) into the engine's tensors, every slot verified; revoke() fails everyone."""
import os
import tempfile
import time

import numpy as np

import eccl
from _multiproc import run_ranks

L, E, S, W = 2, 8, 3, 16  # layers, experts, slots per rank, floats per expert


def value(layer, expert):
    return np.full(W, layer * 100 + expert, dtype=np.float32)


def _crash_then_recover(rank, size, address, checkpoint):
    store = eccl.TcpStore.connect(address)
    group = eccl.ElasticGroup.join(store, "crash", rank, size)
    tensors = {"w": [np.zeros((S, W), dtype=np.float32) for _ in range(L)]}
    for l in range(L):
        for s in range(S):
            tensors["w"][l][s] = value(l, (rank * S + s) % E)  # the default initial placement
    eplb = eccl.Eplb(group.comm, L, E, S, tensors, heat_steps=1000, algorithm_steps=10)
    victim = 1
    group.comm.barrier()
    if rank == victim:
        store.wait(["through/%d" % r for r in range(size) if r != victim])
        os._exit(1)  # no goodbye: a crash
    store.set("through/%d" % rank, b"1")
    try:
        for _ in range(1000):
            eplb.before_forward()
            group.comm.all_reduce(np.ones(4, dtype=np.float32))
            eplb.after_forward()
        raise AssertionError("serving went on without rank %d" % victim)
    except (eccl.ConnectionClosed, eccl.Aborted) as e:
        message = str(e)
    deadline = time.monotonic() + 20
    while group.comm.failed_ranks() != [victim] and time.monotonic() < deadline:
        time.sleep(0.01)
    failed = group.comm.failed_ranks()
    # Even ranks reload from the checkpoint file, odd ones from the engine's own source.
    if rank % 2 == 0:
        info, report = eplb.recover(group, checkpoint=checkpoint)
    else:
        info, report = eplb.recover(group, source=lambda l, e: {"w": value(l, e)})
    assert info.failed == [victim] and info.size == size - 1 and info.rank == group.rank, info
    assert report["failed"] == [victim]
    lost = {(x["layer"], x["expert"]) for x in report["lost"]}
    # Rank 1 held experts 3, 4, 5; expert 3 has a copy on rank 3 (the redundant slots hold 0..3).
    assert lost == {(l, e) for l in range(L) for e in (4, 5)}, lost

    def check():
        em = eplb.expert_map()
        for l in range(L):
            for e in range(E):
                s = int(em[l, e])
                if s >= 0:
                    assert np.array_equal(tensors["w"][l][s], value(l, e)), "layer %d slot %d != expert %d" % (l, s, e)
            assert sorted(int(em[l, e]) for e in range(E) if em[l, e] >= 0) == list(range(S)), "layer %d: a slot is empty" % l
    check()
    for _ in range(L + 2):  # the policy's rebalance over the survivors, one layer per step
        eplb.before_forward()
        group.comm.all_reduce(np.ones(4, dtype=np.float32))
        eplb.after_forward()
    check()
    out = {"message": message, "failed": failed, "reloaded": report["reloaded"]}
    eplb.destroy()
    group.destroy()
    store.close()
    return out


def test_eplb_recovers_from_a_crashed_rank_reloading_only_what_was_lost():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "experts.ckpt")
        eccl.write_checkpoint(path, L, E, [{"name": "w", "shape": [W], "dtype": "float32"}], lambda l, e: [value(l, e)])
        results = run_ranks(_crash_then_recover, 4, extra=path, allow_exit=[1])
    survivors = [r for i, r in enumerate(results) if i != 1]
    for r in survivors:
        assert "rank 1" in r["message"], r["message"]
        assert r["failed"] == [1], r
    assert sum(r["reloaded"] for r in survivors) == 2 * L  # each lost expert read once


def _revoke(rank, size, address, extra):
    store = eccl.TcpStore.connect(address)
    comm = eccl.Communicator.from_store(store, "revoke", rank, size)
    x = np.zeros(1, dtype=np.int64)
    work = comm.irecv(x, (rank + 1) % size, tag=5)  # never sent
    if rank == 0:
        time.sleep(0.2)
        comm.revoke("engine decided", failed=[2])
    try:
        work.wait()
        raise AssertionError("a revoked receive completed")
    except eccl.Aborted as e:
        message = str(e)
    failed = comm.failed_ranks()
    comm.destroy()
    store.close()
    return {"message": message, "failed": failed}


def test_revoke_fails_every_ranks_operations():
    results = run_ranks(_revoke, 3)
    for r in results:
        assert "revoked by rank 0: engine decided" in r["message"], r
    assert results[0]["failed"] == [2]
