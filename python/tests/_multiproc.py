"""Running a test function as N ranks in separate processes.

``run_ranks(fn, size)`` starts a rendezvous store here, spawns ``size`` processes (the "spawn"
start method: no state forked from the test runner, as under a real launcher), and calls
``fn(rank, size, store_address, extra)`` in each. ``fn`` must be a module-level function (it is
pickled by reference). Returns the per-rank return values; a child's exception is re-raised here
with the child's traceback text. Children that hang are killed (by pid) after ``timeout``
seconds; once one child failed, the others get ``grace`` seconds before being killed, since
they are usually blocked on the failed one.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import socket
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional

import eccl


class ChildFailed(AssertionError):
    """A rank's process failed; the message holds its traceback."""


def free_port() -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(fn: Callable, rank: int, size: int, address: Optional[str], extra: Any, env: Dict[str, str],
           conn) -> None:
    # Deadlines well inside the parent's timeout, so a hang fails with eccl's message instead of
    # a kill; the test may override them through env.
    os.environ.setdefault("ECCL_TIMEOUT", "60")
    os.environ.setdefault("ECCL_STORE_TIMEOUT", "60")
    os.environ.update(env)
    try:
        result = fn(rank, size, address, extra)
        conn.send(("ok", result))
    except BaseException as e:  # report everything, KeyboardInterrupt included
        conn.send(("error", "%s\n%s" % (repr(e), traceback.format_exc())))
    finally:
        conn.close()


def run_ranks(fn: Callable, size: int, extra: Any = None, timeout: float = 120.0, env: Optional[Dict[str, str]] = None,
              per_rank_env: Optional[List[Dict[str, str]]] = None, store: bool = True, allow_exit: Iterable[int] = (),
              grace: float = 20.0) -> List[Any]:
    """Runs ``fn`` on ``size`` ranks; returns their results in rank order.

    ``env``: variables set in every child before ``fn`` runs; ``per_rank_env``: per rank on top.
    ``store``: start a TcpStoreServer here and pass its address (else None is passed).
    ``allow_exit``: ranks that may end without a result (e.g. ``os._exit``); their result is None.
    """
    ctx = multiprocessing.get_context("spawn")
    server = eccl.TcpStoreServer() if store else None
    address = server.address if server else None
    allowed = set(allow_exit)
    procs, readers = [], []
    try:
        for r in range(size):
            child_env = dict(env or {})
            if per_rank_env:
                child_env.update(per_rank_env[r])
            recv_end, send_end = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(fn, r, size, address, extra, child_env, send_end),
                            name="rank%d" % r, daemon=True)
            p.start()
            send_end.close()  # the child holds it now: EOF here once it is gone
            procs.append(p)
            readers.append(recv_end)
        return _collect(procs, readers, allowed, timeout, grace)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
        for c in readers:
            c.close()
        if server:
            server.stop()


def _collect(procs, readers, allowed, timeout: float, grace: float) -> List[Any]:
    size = len(procs)
    results: List[Any] = [None] * size
    reported = [False] * size
    failures: Dict[int, str] = {}
    deadline = time.monotonic() + timeout
    open_readers = {readers[r]: r for r in range(size)}
    while open_readers:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for c in multiprocessing.connection.wait(list(open_readers), timeout=remaining):
            r = open_readers.pop(c)
            try:
                kind, payload = c.recv()
            except EOFError:
                continue  # exited without reporting
            reported[r] = True
            if kind == "ok":
                results[r] = payload
            else:
                failures[r] = payload
                deadline = min(deadline, time.monotonic() + grace)
    for p in procs:
        p.join(max(0.0, min(5.0, deadline - time.monotonic())))
    hung = [r for r in range(size) if not reported[r] and procs[r].is_alive()]
    for r in hung:
        procs[r].kill()
    lines = []
    for r in sorted(failures):
        lines.append("rank %d failed:\n%s" % (r, failures[r]))
    for r in range(size):
        if reported[r] or r in hung:
            continue
        procs[r].join(5)
        if r not in allowed:
            lines.append("rank %d exited with code %s without a result" % (r, procs[r].exitcode))
    if hung and failures:
        lines.append("ranks %s were killed %.0f s after the first failure" % (hung, grace))
    elif hung:
        lines.append("ranks %s did not finish within %.0f s and were killed" % (hung, timeout))
    if lines:
        raise ChildFailed("\n".join(lines))
    return results
