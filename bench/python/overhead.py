"""What the Python layer adds to a call: the same loops through the C API (capi_call_bench, a C
program) and through the eccl package (numpy and torch arguments), on a one-rank communicator
so no byte leaves the process. Rounds alternate C and Python (A B A B); medians and ranges.

    PYTHONPATH=python python3 bench/python/overhead.py build/bench/capi_call_bench [--rounds 7]
"""
import argparse
import statistics
import subprocess
import time

import numpy as np
import torch

import eccl


def c_figures(binary, n):
    out = subprocess.run([binary, str(n)], check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def py_figures(comm, n):
    figures = {}
    for name, make in (("numpy", lambda: np.array([1.0, 2.0], dtype=np.float32)),
                       ("torch", lambda: torch.tensor([1.0, 2.0], dtype=torch.float32))):
        x = make()
        for _ in range(n // 10):  # warm-up
            comm.all_reduce(x)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            comm.all_reduce(x)
        figures["all_reduce/" + name] = (time.perf_counter_ns() - t0) / n
        src, dst = make()[:1], make()[:1]
        t0 = time.perf_counter_ns()
        for _ in range(n):
            s = comm.isend(src, 0, tag=5)
            r = comm.irecv(dst, 0, tag=5)
            s.wait()
            r.wait()
        figures["isend_irecv_self/" + name] = (time.perf_counter_ns() - t0) / n
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capi_call_bench")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    server = eccl.TcpStoreServer.start()
    store = eccl.TcpStore.connect(server.address)
    comm = eccl.Communicator.from_store(store, "overhead", 0, 1)
    c_runs, py_runs = [], []
    for _ in range(args.rounds):
        c_runs.append(c_figures(args.capi_call_bench, args.calls))
        py_runs.append(py_figures(comm, args.calls))
    print("# ns per call, one-rank communicator, %d rounds of %d calls (median [min-max])" % (args.rounds, args.calls))
    print("%-28s %22s %22s %22s" % ("operation", "C API", "Python", "Python - C (median)"))
    for op in ("all_reduce", "isend_irecv_self"):
        c = [r[op] for r in c_runs]
        for kind in ("numpy", "torch"):
            p = [r[op + "/" + kind] for r in py_runs]
            diff = [b - a for a, b in zip(c, p)]
            fmt = lambda v: "%6.0f [%5.0f-%5.0f]" % (statistics.median(v), min(v), max(v))
            print("%-28s %22s %22s %22s" % (op + " (" + kind + ")", fmt(c), fmt(p), "%6.0f" % statistics.median(diff)))
    comm.destroy()
    store.close()
    server.stop()


if __name__ == "__main__":
    main()
