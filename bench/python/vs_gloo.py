"""eccl's Python package against torch.distributed's gloo backend, in the same processes and the
same run: all_gather of float32 blocks, and a batch of expert tensors (bf16) sent to the next
rank while receiving from the previous one (the EPLB move pattern). Each round times eccl and
gloo back to back (the order alternates round to round); a figure is the slowest rank's mean
per iteration; medians and ranges over the rounds.

    PYTHONPATH=python python3 bench/python/vs_gloo.py [--ranks 2 4] [--rounds 5]
"""
import argparse
import multiprocessing
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist

import eccl


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed(comm, fn, iters, warmup):
    for _ in range(warmup):
        fn()
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    mine = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
    comm.all_reduce(mine, op="max")
    return float(mine) * 1e6


def _rank(rank, size, store_address, gloo_port, args, queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % gloo_port, rank=rank, world_size=size)
    store = eccl.TcpStore.connect(store_address)
    comm = eccl.Communicator.from_store(store, "vs-gloo", rank, size)
    results = []
    for rnd in range(args.rounds):
        for kb in args.all_gather_kib:
            n = kb * 1024 // 4
            x = torch.full((n,), float(rank))
            out = torch.empty(size * n)
            parts = list(out.chunk(size))
            runs = {"eccl": lambda: comm.all_gather(out, x), "gloo": lambda: dist.all_gather(parts, x)}
            for lib in (("eccl", "gloo") if rnd % 2 == 0 else ("gloo", "eccl")):
                results.append(("all_gather %d KiB" % kb, lib, rnd, _timed(comm, runs[lib], args.iters, 3)))
        nxt, prv = (rank + 1) % size, (rank - 1) % size
        experts = [torch.full((args.expert_kib * 512,), float(rank), dtype=torch.bfloat16) for _ in range(args.experts)]
        incoming = [torch.empty_like(e) for e in experts]

        def eccl_move():
            ops = [eccl.P2POp("send", e, nxt, tag=k) for k, e in enumerate(experts)]
            ops += [eccl.P2POp("recv", t, prv, tag=k) for k, t in enumerate(incoming)]
            comm.batch_isend_irecv(ops).wait()

        def gloo_move():
            ops = [dist.P2POp(dist.isend, e, nxt, tag=k) for k, e in enumerate(experts)]
            ops += [dist.P2POp(dist.irecv, t, prv, tag=k) for k, t in enumerate(incoming)]
            for w in dist.batch_isend_irecv(ops):
                w.wait()

        name = "batch P2P %d x %d KiB" % (args.experts, args.expert_kib)
        for lib in (("eccl", "gloo") if rnd % 2 == 0 else ("gloo", "eccl")):
            results.append((name, lib, rnd, _timed(comm, eccl_move if lib == "eccl" else gloo_move, args.iters, 2)))
        assert all(bool((t == float(prv)).all()) for t in incoming)
    if rank == 0:
        queue.put(results)
    comm.destroy()
    store.close()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--all-gather-kib", type=int, nargs="+", default=[64, 1024])
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--expert-kib", type=int, default=1024)
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print("# microseconds per iteration, slowest rank; median [min-max] over %d rounds" % args.rounds)
    print("%-6s %-26s %24s %24s %8s" % ("ranks", "operation", "eccl", "gloo", "gloo/eccl"))
    for size in args.ranks:
        server = eccl.TcpStoreServer.start()
        queue = ctx.Queue()
        port = _free_port()
        procs = [ctx.Process(target=_rank, args=(r, size, server.address, port, args, queue)) for r in range(size)]
        for p in procs:
            p.start()
        results = queue.get(timeout=600)
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()  # by pid: only what this script started
        server.stop()
        ops = []
        for op, _, _, _ in results:
            if op not in ops:
                ops.append(op)
        for op in ops:
            e = [t for o, lib, _, t in results if o == op and lib == "eccl"]
            g = [t for o, lib, _, t in results if o == op and lib == "gloo"]
            fmt = lambda v: "%8.0f [%6.0f-%6.0f]" % (statistics.median(v), min(v), max(v))
            print("%-6d %-26s %24s %24s %7.2fx" % (size, op, fmt(e), fmt(g), statistics.median(g) / statistics.median(e)))


if __name__ == "__main__":
    main()
