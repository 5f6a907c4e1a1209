"""Async work on 2 ranks: tagged isend/irecv from two threads between the same pair (messages
must not mix), Work.is_completed/wait/cancel, wait deadlines, dropped Work, and that a blocking
call releases the GIL. numpy only: these children need no torch."""
import gc
import threading
import time

import numpy as np
import pytest

import eccl
from _multiproc import run_ranks

ITERATIONS = 50


def _two_threads(comm, rank):
    peer = 1 - rank
    errors = []

    def worker(t):
        tag = 100 + t
        try:
            for i in range(ITERATIONS):
                out = np.arange(16, dtype=np.int64) + (rank * 100000 + t * 1000 + i) * 100
                inp = np.full(16, -1, dtype=np.int64)
                wr = comm.irecv(inp, peer, tag=tag)
                ws = comm.isend(out, peer, tag=tag)
                ws.wait()
                wr.wait()
                want = np.arange(16, dtype=np.int64) + (peer * 100000 + t * 1000 + i) * 100
                if not np.array_equal(inp, want):
                    errors.append("thread %d iteration %d got %s, want %s" % (t, i, inp[:3], want[:3]))
        except Exception as e:  # reported below, not lost in the thread
            errors.append("thread %d: %r" % (t, e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads), "a P2P thread hung"
    assert not errors, "\n".join(errors[:10])


def _completion(comm, store, rank):
    if rank == 1:
        buf = np.zeros(8, dtype=np.float32)
        w = comm.irecv(buf, 0, tag=5)
        assert not w.is_completed()  # rank 0 sends only after the key below
        store.set("posted", "1")
        assert w.wait(timeout=30) is True
        assert w.is_completed() and w.exception() is None
        np.testing.assert_array_equal(buf, np.arange(8, dtype=np.float32))

        # Cancel: afterwards the buffer is not touched (rank 0 never sends tag 11).
        w = comm.irecv(np.zeros(4, dtype=np.int32), 0, tag=11)
        w.cancel()
        del w

        # Dropping a Work while it runs keeps its buffer alive until the operation ends.
        late = np.zeros(4, dtype=np.int64)
        w = comm.irecv(late, 0, tag=12)
        del w
        gc.collect()
        store.set("dropped", "1")
        deadline = time.monotonic() + 30
        while not np.array_equal(late, [12] * 4) and time.monotonic() < deadline:
            time.sleep(0.01)
        np.testing.assert_array_equal(late, [12] * 4)
    else:
        store.wait(["posted"])
        comm.send(np.arange(8, dtype=np.float32), 1, tag=5)
        store.wait(["dropped"])
        comm.send(np.full(4, 12, dtype=np.int64), 1, tag=12)
    comm.barrier()


def _deadline(comm, store, rank, p2p):
    """eccl.h: at a wait's deadline ecclWorkWait returns ecclTimeout. A collective keeps running
    and a later wait completes it; P2P work is withdrawn (its buffer is free at once) and the
    communicator goes on: a receive on a fresh tag gets its message."""
    buf = np.zeros(8, dtype=np.float32)
    if rank == 1:
        w = comm.irecv(buf, 0, tag=6) if p2p else comm.all_reduce(buf, async_op=True)
        t0 = time.monotonic()
        with pytest.raises(eccl.Timeout):
            w.wait(timeout=0.2)  # rank 0 has not started its side yet
        assert time.monotonic() - t0 < 10
        if p2p:
            assert w.is_completed(), "a timed-out receive must be withdrawn"
            assert isinstance(w.exception(), eccl.Timeout)
            w = comm.irecv(buf, 0, tag=7)
        else:
            assert not w.is_completed(), "the wait deadline ended the collective: %r" % (w.exception(),)
        store.set("timed-out", "1")
        assert w.wait(timeout=30) is True
        np.testing.assert_array_equal(buf, np.full(8, 6, dtype=np.float32))
    else:
        store.wait(["timed-out"])
        if p2p:
            comm.send(np.full(8, 6, dtype=np.float32), 1, tag=7)
        else:
            buf[:] = 6
            comm.all_reduce(buf)
    comm.barrier()


def _gil(comm, store, rank):
    buf = np.zeros(4, dtype=np.float64)
    if rank == 0:
        store.wait(["receiving"])
        time.sleep(0.5)
        comm.send(np.ones(4), 1, tag=8)
        return
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    th = threading.Thread(target=count)
    th.start()
    store.set("receiving", "1")
    t0 = time.monotonic()
    comm.recv(buf, 0, tag=8)  # blocks ~0.5 s in C
    t1 = time.monotonic()
    stop.set()
    th.join()
    assert t1 - t0 > 0.3, "recv returned after %.3f s: the peer should have made it wait" % (t1 - t0)
    inside = [t for t in ticks if t0 + 0.1 < t < t1 - 0.1]
    # ~60 ticks when the GIL is free during recv; none when recv holds it.
    assert len(inside) >= 10, "the counting thread ticked %d times during a %.2f s recv" % (len(inside), t1 - t0)
    np.testing.assert_array_equal(buf, np.ones(4))


def _rank_main(rank, size, address, extra):
    part = extra["part"]
    store = eccl.TcpStore.connect(address)
    comm = eccl.Communicator.from_store(store, "async-" + part, rank, size)
    try:
        if part == "threads":
            _two_threads(comm, rank)
        elif part == "completion":
            _completion(comm, store, rank)
        elif part.startswith("deadline"):
            _deadline(comm, store, rank, p2p=part.endswith("p2p"))
        else:
            _gil(comm, store, rank)
    finally:
        comm.destroy()
        store.close()


def test_tagged_p2p_from_two_threads():
    run_ranks(_rank_main, 2, extra={"part": "threads"})


def test_work_completion_cancel_and_drop():
    run_ranks(_rank_main, 2, extra={"part": "completion"})


@pytest.mark.parametrize("kind", ["collective", "p2p"])
def test_wait_deadline_keeps_collectives_and_withdraws_p2p(kind):
    run_ranks(_rank_main, 2, extra={"part": "deadline-" + kind}, grace=5)


def test_blocking_call_releases_the_gil():
    run_ranks(_rank_main, 2, extra={"part": "gil"})
