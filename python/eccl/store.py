"""The rendezvous store: a server this process runs, and client connections.

Keys are ``str`` (UTF-8) or ``bytes`` without NUL; values are bytes (``str`` is UTF-8 encoded).
Timeouts are seconds (``float``); ``None`` means the store's default (the connection's timeout,
else ``$ECCL_STORE_TIMEOUT``, else 300 s). Failures raise :mod:`eccl.errors` exceptions
(``Timeout`` when a key does not appear in time).

Thread-safety: a :class:`TcpStore` may be used from several threads at once (the C connection is
thread-safe), but ``close()`` must not race with other calls on the same object.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Iterable, Optional, Union

from . import _lib
from .errors import InvalidArgument
from ._resource import Resource

Key = Union[str, bytes]
Value = Union[bytes, bytearray, memoryview, str]


def _key(key: Key, name: str = "key") -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    elif not isinstance(key, bytes):
        raise InvalidArgument("'%s' must be str or bytes, not %s" % (name, type(key).__name__))
    if b"\0" in key:
        raise InvalidArgument("'%s' %r contains a NUL byte" % (name, key))
    return key


class TcpStoreServer(Resource):
    """A store served by this process on its own thread until :meth:`stop`.

    ``TcpStoreServer(host, port)`` (or ``TcpStoreServer.start(...)``) starts it; port 0 picks a
    free port; ``address`` is ``"host:port"`` to hand to every rank. Stopping drops every key; a
    server is also stopped when garbage-collected. Usable as a context manager.
    """

    def __init__(self, host: Optional[str] = "127.0.0.1", port: int = 0):
        if not 0 <= int(port) <= 65535:
            raise InvalidArgument("'port' must be 0..65535, got %r" % (port,))
        self._L = _lib.load()
        self._lock = threading.Lock()
        h = ctypes.c_void_p()
        self._L.ecclStoreServerStart(host.encode() if host else None, int(port), ctypes.byref(h))
        self._h = h.value
        buf = ctypes.create_string_buffer(320)
        try:
            self._L.ecclStoreServerAddress(self._h, buf, len(buf))
        except BaseException:
            self.stop()
            raise
        self.address: str = buf.value.decode()

    @classmethod
    def start(cls, host: Optional[str] = "127.0.0.1", port: int = 0) -> "TcpStoreServer":
        return cls(host, port)

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def stop(self) -> None:
        """Stops serving (idempotent)."""
        with self._lock:
            h, self._h = self._h, None
        if h:
            self._L.ecclStoreServerStop(h)

    close = stop

    def __repr__(self) -> str:
        return "TcpStoreServer(%r%s)" % (self.address, "" if getattr(self, "_h", None) else ", stopped")


class TcpStore(Resource):
    """A connection to a rendezvous store.

    Make one with :meth:`connect` (or get one from :func:`eccl.bootstrap`). A store connection
    made by ``bootstrap()`` on rank 0 also owns the store it serves: close it last there.
    Closed when garbage-collected; usable as a context manager.
    """

    _GET_CAPACITY = 4096  # first buffer of get(); grown to the value's size when it is bigger

    def __init__(self, handle: int, address: str = ""):
        """Wraps a connection handle (owned: closed by close()). Use :meth:`connect` instead."""
        self._L = _lib.load()
        self._h = handle
        self._lock = threading.Lock()
        self.address = address

    @classmethod
    def connect(cls, address: str, timeout: Optional[float] = None) -> "TcpStore":
        """Connects to ``"host:port"``. ``timeout`` (seconds) bounds connecting and is the default
        of every blocking call on this connection."""
        L = _lib.load()
        h = ctypes.c_void_p()
        L.ecclStoreConnect(address.encode(), _lib.seconds_to_ms(timeout), ctypes.byref(h))
        return cls(h.value, address)

    @property
    def handle(self) -> int:
        """The ``ecclStore_t`` (for C calls); raises when closed."""
        h = self._h
        if not h:
            raise InvalidArgument("the store connection to %s is closed" % (self.address or "?"))
        return h

    def set(self, key: Key, value: Value) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, bytes):
            value = bytes(value)
        self._L.ecclStoreSet(self.handle, _key(key), value, len(value))

    def get(self, key: Key, timeout: Optional[float] = None) -> bytes:
        """Waits up to ``timeout`` seconds for ``key`` and returns its value."""
        k = _key(key)
        ms = _lib.seconds_to_ms(timeout)
        cap = self._GET_CAPACITY
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = ctypes.c_size_t(0)
            try:
                self._L.ecclStoreGet(self.handle, k, buf, cap, ctypes.byref(n), ms)
            except InvalidArgument:
                # Too small: the C side reports the value's size and keeps the key; retry with
                # that much (in a loop, since another rank may grow the value meanwhile).
                if n.value > cap:
                    cap = n.value
                    continue
                raise
            return ctypes.string_at(buf, n.value)

    def add(self, key: Key, delta: int = 1) -> int:
        """Adds ``delta`` to the decimal counter at ``key`` (absent = 0); returns the new value."""
        v = ctypes.c_int64(0)
        self._L.ecclStoreAdd(self.handle, _key(key), int(delta), ctypes.byref(v))
        return v.value

    def wait(self, keys: Union[Key, Iterable[Key]], timeout: Optional[float] = None) -> None:
        """Waits until every key exists (``Timeout`` after ``timeout`` seconds)."""
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        ks = [_key(k, "keys") for k in keys]
        arr = (ctypes.c_char_p * len(ks))(*ks)
        self._L.ecclStoreWait(self.handle, arr, len(ks), _lib.seconds_to_ms(timeout))

    def delete(self, key: Key) -> bool:
        """Deletes ``key``; True when it existed."""
        existed = ctypes.c_int(0)
        self._L.ecclStoreDelete(self.handle, _key(key), ctypes.byref(existed))
        return bool(existed.value)

    def close(self) -> None:
        """Closes the connection (idempotent); on bootstrap's rank 0 also stops its store."""
        with self._lock:
            h, self._h = self._h, None
        if h:
            self._L.ecclStoreClose(h)

    def __repr__(self) -> str:
        return "TcpStore(%r%s)" % (self.address, "" if getattr(self, "_h", None) else ", closed")
