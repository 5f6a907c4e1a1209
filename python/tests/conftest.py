"""Shared set-up: import paths, and fixtures for tests that run in this process.

Multi-rank tests use ``_multiproc.run_ranks`` (spawned processes). Run the suite with
``/usr/bin/python3 -m pytest python/tests``; set ``$ECCL_LIBRARY_PATH`` to test another build.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The package (python/) and this directory (for _multiproc), also for spawned children, which
# inherit sys.path from this process.
for p in (os.path.dirname(HERE), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

# One compute thread per process: the multi-rank tests run several processes on few cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

import eccl  # noqa: E402


@pytest.fixture
def server():
    """A store served by this process."""
    with eccl.TcpStoreServer() as s:
        yield s


@pytest.fixture
def store(server):
    """A connection to ``server``."""
    with eccl.TcpStore.connect(server.address, timeout=30) as s:
        yield s


@pytest.fixture
def solo(store):
    """A one-rank communicator (argument checks need a communicator but no peers)."""
    with eccl.Communicator.from_store(store, "solo", 0, 1) as c:
        yield c
