"""The C API through Python ctypes, the way vllm-ascend's pyhccl drives HCCL: 2 ranks in
processes forked before the root info exists; all_reduce and batched send/recv of floats."""
import ctypes
import os
import struct
import sys


class RootInfo(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * 256)]


class SendRecvItem(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("buf", ctypes.c_void_p), ("count", ctypes.c_uint64),
                ("dataType", ctypes.c_int), ("remoteRank", ctypes.c_uint32), ("memHandle", ctypes.c_void_p),
                ("tag", ctypes.c_uint64)]


FLOAT32, SUM, SEND, RECV = 5, 0, 0, 1


def run(lib, rank, root):
    comm = ctypes.c_void_p()
    check(lib, lib.ecclCommInitRootInfo(2, ctypes.byref(root), rank, ctypes.byref(comm)))
    data = (ctypes.c_float * 4)(*[rank + i for i in range(4)])
    check(lib, lib.ecclAllReduce(data, data, 4, FLOAT32, SUM, comm))
    assert list(data) == [1.0, 3.0, 5.0, 7.0], list(data)
    out = (ctypes.c_float * 3)(*[10.0 * rank] * 3)
    inp = (ctypes.c_float * 3)()
    # The receive buffer registered once, as an engine does with its expert weights.
    handle = ctypes.c_void_p()
    check(lib, lib.ecclCommRegister(comm, inp, ctypes.sizeof(inp), ctypes.byref(handle)))
    items = (SendRecvItem * 2)(SendRecvItem(SEND, ctypes.cast(out, ctypes.c_void_p), 3, FLOAT32, 1 - rank, None),
                               SendRecvItem(RECV, ctypes.cast(inp, ctypes.c_void_p), 3, FLOAT32, 1 - rank, handle))
    check(lib, lib.ecclBatchSendRecv(items, 2, comm))
    assert list(inp) == [10.0 * (1 - rank)] * 3, list(inp)
    check(lib, lib.ecclCommDeregister(comm, handle))
    rc = lib.ecclBroadcast(data, 4, FLOAT32, 5, comm)
    assert rc == 1 and b"5" in lib.ecclGetLastError(), lib.ecclGetLastError()
    check(lib, lib.ecclCommDestroy(comm))


def check(lib, rc):
    if rc != 0:
        raise RuntimeError("eccl error %d: %s" % (rc, lib.ecclGetLastError().decode()))


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.ecclGetLastError.restype = ctypes.c_char_p
    lib.ecclGetErrorString.restype = ctypes.c_char_p
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        root = RootInfo()
        data = b""
        while len(data) < ctypes.sizeof(root):
            data += os.read(r, ctypes.sizeof(root) - len(data))
        ctypes.memmove(ctypes.byref(root), data, len(data))
        try:
            run(lib, 1, root)
            os._exit(0)
        except Exception as e:  # report and fail
            print("rank 1:", e, file=sys.stderr)
            os._exit(1)
    root = RootInfo()
    check(lib, lib.ecclGetRootInfo(ctypes.byref(root)))
    os.write(w, bytes(root))
    run(lib, 0, root)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "rank 1 failed"
    print("ctypes test passed")


if __name__ == "__main__":
    main()
