"""Exceptions raised by eccl.

Every failing C call becomes an :class:`EcclError` subclass chosen by its ``ecclResult_t``; the
message is the C library's ``ecclGetLastError()`` text (which names the operation, group, ranks,
peer and the argument that was wrong). Checks done in Python before a call raise
:class:`InvalidArgument` too, so callers catch one family of exceptions.

This module does not load the C library: it can be imported anywhere.
"""
from __future__ import annotations

import enum
from typing import Optional


class Result(enum.IntEnum):
    """``ecclResult_t``."""

    SUCCESS = 0
    INVALID_ARGUMENT = 1
    TIMEOUT = 2
    CONNECTION_CLOSED = 3
    REMOTE_ERROR = 4
    SYSTEM_ERROR = 5
    ABORTED = 6
    INTERNAL_ERROR = 7


# The C names, so messages and .code_name match the header and the C library's documentation.
_C_NAMES = {
    0: "ecclSuccess",
    1: "ecclInvalidArgument",
    2: "ecclTimeout",
    3: "ecclConnectionClosed",
    4: "ecclRemoteError",
    5: "ecclSystemError",
    6: "ecclAborted",
    7: "ecclInternalError",
}


class EcclError(RuntimeError):
    """A failed eccl operation.

    Attributes:
        code: the ``ecclResult_t`` value (an ``int``; compare with :class:`Result`).
        code_name: its C name, e.g. ``"ecclConnectionClosed"``.
    """

    code: int = Result.INTERNAL_ERROR

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        if code is not None:
            self.code = int(code)

    @property
    def code_name(self) -> str:
        return _C_NAMES.get(self.code, "ecclResult(%d)" % self.code)

    def __reduce__(self):
        # Keeps the code when the exception crosses a process boundary (multiprocessing pickles
        # exceptions by their args, which would drop it).
        return (_rebuild, (type(self), str(self), self.code))


def _rebuild(cls, message, code):
    return cls(message, code)


class InvalidArgument(EcclError, ValueError):
    """An argument was wrong (also raised by the Python-side checks). A ``ValueError``."""

    code = Result.INVALID_ARGUMENT


class Timeout(EcclError):
    """A deadline passed (the communicator's, the store's, or the one given to a call)."""

    code = Result.TIMEOUT


class ConnectionClosed(EcclError):
    """A peer died or went away; the group is broken."""

    code = Result.CONNECTION_CLOSED


class RemoteError(EcclError):
    """A peer or the store reported a failure (protocol or authentication errors included)."""

    code = Result.REMOTE_ERROR


class EcclSystemError(EcclError):
    """An operating-system call failed (named so as not to shadow Python's ``SystemError``)."""

    code = Result.SYSTEM_ERROR


class Aborted(EcclError):
    """The communicator was aborted, here or on another rank."""

    code = Result.ABORTED


class InternalError(EcclError):
    """A bug in eccl, or an error the C library could not classify."""

    code = Result.INTERNAL_ERROR


_BY_CODE = {
    Result.INVALID_ARGUMENT: InvalidArgument,
    Result.TIMEOUT: Timeout,
    Result.CONNECTION_CLOSED: ConnectionClosed,
    Result.REMOTE_ERROR: RemoteError,
    Result.SYSTEM_ERROR: EcclSystemError,
    Result.ABORTED: Aborted,
    Result.INTERNAL_ERROR: InternalError,
}


def error_class(code: int) -> type:
    """The exception class for an ``ecclResult_t`` (:class:`EcclError` for unknown codes)."""
    return _BY_CODE.get(code, EcclError)


def make_error(code: int, message: str) -> EcclError:
    """An exception instance for ``code`` carrying ``message`` (the code's name if empty)."""
    if not message:
        message = _C_NAMES.get(code, "eccl error %d" % code)
    return error_class(code)(message, code)
