"""The rendezvous store from Python, in this process."""
import threading
import time

import pytest

import eccl


def test_server_address_and_context_manager():
    with eccl.TcpStoreServer.start() as server:
        host, port = server.address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0 and server.port == int(port)
        with eccl.TcpStore.connect(server.address, timeout=10) as s:
            s.set("k", "v")
            assert s.get("k") == b"v"
    server.stop()  # idempotent


def test_set_get_add_delete(store):
    store.set("text", "héllo")
    store.set(b"raw", b"\x00\x01\x02")
    assert store.get("text") == "héllo".encode()
    assert store.get("raw") == b"\x00\x01\x02"
    assert store.add("counter") == 1
    assert store.add("counter", 41) == 42
    assert store.add("counter", -2) == 40
    assert store.delete("raw") is True
    assert store.delete("raw") is False


def test_large_value_grows_the_buffer(store):
    value = bytes(range(256)) * 800  # 200 KiB: beyond the first buffer
    store.set("big", value)
    assert store.get("big") == value


def test_timeouts(store):
    t0 = time.monotonic()
    with pytest.raises(eccl.Timeout):
        store.get("never", timeout=0.2)
    with pytest.raises(eccl.Timeout):
        store.wait(["never", "either"], timeout=0.2)
    assert time.monotonic() - t0 < 10


def test_wait_sees_a_later_set(server, store):
    def later():
        with eccl.TcpStore.connect(server.address) as other:
            time.sleep(0.2)
            other.set("late", b"1")

    th = threading.Thread(target=later)
    th.start()
    store.wait("late", timeout=30)
    assert store.get("late") == b"1"
    th.join()


def test_closed_and_bad_keys(server):
    s = eccl.TcpStore.connect(server.address)
    s.close()
    s.close()
    with pytest.raises(eccl.InvalidArgument, match="closed"):
        s.get("k")
    with eccl.TcpStore.connect(server.address) as s2:
        with pytest.raises(eccl.InvalidArgument, match="NUL"):
            s2.set("a\0b", b"x")
        with pytest.raises(eccl.InvalidArgument):
            s2.get(3)


def test_connect_to_nothing_fails():
    with eccl.TcpStoreServer() as server:
        address = server.address
    t0 = time.monotonic()
    # The C client may connect lazily: the error comes from connect() or from the first call.
    with pytest.raises((eccl.ConnectionClosed, eccl.Timeout), match=address.rsplit(":", 1)[1]):
        with eccl.TcpStore.connect(address, timeout=0.5) as s:
            s.set("k", b"v")
    assert time.monotonic() - t0 < 10
