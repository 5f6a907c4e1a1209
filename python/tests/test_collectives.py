"""Every collective and batched P2P on 3 ranks, checked against torch.distributed's gloo backend
run in the same processes on the same inputs.

One spawn runs every case (spawning is the slow part); each case is then reported as its own
pytest test. Inputs are small integers, exact in every dtype tested (bfloat16 included), so
results compare exactly whatever order eccl reduces in. gloo in torch 1.13 lacks bfloat16 for
some operations, so bfloat16 cases use gloo on float32 copies as the reference.
"""
import functools
import traceback

import numpy as np
import pytest
import torch
import torch.distributed as dist

import eccl
from _multiproc import free_port, run_ranks

SIZE = 3
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int64": torch.int64}
GLOO_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN, "prod": dist.ReduceOp.PRODUCT}


def _ref_dtype(dtype):
    return torch.float32 if dtype == torch.bfloat16 else dtype


def _data(rank, n, dtype, salt=0):
    """Deterministic small integers in -20..29: exact in bf16, and sums/products stay exact."""
    v = (torch.arange(n, dtype=torch.int64) * (rank + 2) + 3 * salt + 5 * rank) % 50 - 20
    return v.to(dtype)


def _equal(got, want, what):
    got, want = torch.as_tensor(got), torch.as_tensor(want)
    assert got.dtype == want.dtype and torch.equal(got, want), "%s:\n eccl %s\n gloo %s" % (what, got, want)


# --- cases: each runs on every rank, collective calls in the same order everywhere -----------


def case_all_gather(comm, rank, size, dtype, async_op=False):
    x = _data(rank, 5, dtype)
    out = torch.empty(size * 5, dtype=dtype)
    work = comm.all_gather(out, x, async_op=async_op)
    if async_op:
        work.wait()
        assert work.is_completed()
    rd = _ref_dtype(dtype)
    parts = [torch.empty(5, dtype=rd) for _ in range(size)]
    dist.all_gather(parts, x.to(rd))
    _equal(out, torch.cat(parts).to(dtype), "all_gather")


def case_all_reduce(comm, rank, size, dtype, op, async_op=False):
    x = _data(rank, 7, dtype)
    if op == "prod":
        x = (x.abs() % 3 + 1).to(dtype)  # 1..3: a product of 3 stays small and exact
    y = x.clone()
    work = comm.all_reduce(y, op=op, async_op=async_op)
    if async_op:
        assert work.wait() is True
    ref = x.to(_ref_dtype(dtype))
    dist.all_reduce(ref, op=GLOO_OPS[op])
    _equal(y, ref.to(dtype), "all_reduce %s" % op)


def case_all_reduce_enum(comm, rank, size):
    y = _data(rank, 4, torch.float32)
    ref = y.clone()
    comm.all_reduce(y, eccl.ReduceOp.MAX)
    dist.all_reduce(ref, op=dist.ReduceOp.MAX)
    _equal(y, ref, "all_reduce ReduceOp.MAX")


def case_reduce_scatter(comm, rank, size, dtype, op="sum"):
    n = 4
    x = _data(rank, size * n, dtype)
    out = torch.empty(n, dtype=dtype)
    comm.reduce_scatter(out, x, op=op)
    # gloo has no reduce_scatter in torch 1.13: all_reduce everything, keep this rank's chunk.
    ref = x.to(_ref_dtype(dtype))
    dist.all_reduce(ref, op=GLOO_OPS[op])
    _equal(out, ref[rank * n:(rank + 1) * n].to(dtype), "reduce_scatter %s" % op)


def case_broadcast(comm, rank, size, dtype):
    x = _data(rank, 6, dtype, salt=1)
    comm.broadcast(x, src=1)
    ref = _data(rank, 6, _ref_dtype(dtype), salt=1)
    dist.broadcast(ref, src=1)
    _equal(x, ref.to(dtype), "broadcast")


def _splits(size):
    # rows rank r sends to rank j: uneven, with empty pieces
    return [[(2 * r + j) % 4 for j in range(size)] for r in range(size)]


def case_all_to_all_v(comm, rank, size, dtype, async_op=False):
    sp = _splits(size)
    send = sp[rank]
    recv = [sp[j][rank] for j in range(size)]
    inp = _data(rank, sum(send) * 2, dtype).view(-1, 2)
    out = torch.full((sum(recv), 2), -99, dtype=dtype)
    work = comm.all_to_all_v(out, inp, output_split_sizes=recv, input_split_sizes=send, async_op=async_op)
    if async_op:
        work.wait()
    rd = _ref_dtype(dtype)
    ref = torch.empty((sum(recv), 2), dtype=rd)
    dist.all_to_all_single(ref, inp.to(rd), output_split_sizes=recv, input_split_sizes=send)
    _equal(out, ref.to(dtype), "all_to_all_v")


def case_all_to_all_equal(comm, rank, size):
    inp = _data(rank, size * 2 * 3, torch.int64).view(size * 2, 3)
    out = torch.empty_like(inp)
    comm.all_to_all_v(out, inp)  # no splits: equal pieces of 2 rows
    ref = torch.empty_like(inp)
    dist.all_to_all_single(ref, inp)
    _equal(out, ref, "all_to_all_v equal splits")


def case_barrier(comm, rank, size):
    comm.barrier()
    w = comm.barrier(async_op=True)
    w.wait(timeout=30)
    assert w.is_completed()


def case_batch_p2p_ring(comm, rank, size, dtype):
    nxt, prv = (rank + 1) % size, (rank - 1) % size
    a, b = _data(rank, 6, dtype, salt=2), _data(rank, 3, dtype, salt=3)
    ra, rb = torch.empty(6, dtype=dtype), torch.empty(3, dtype=dtype)
    reg = comm.register(rb)
    # Receives posted before the sends and in the other tag order: matching is by tag.
    ops = [eccl.P2POp(eccl.irecv, rb, prv, tag=9, registration=reg),
           eccl.P2POp("recv", ra, prv, tag=7),
           eccl.P2POp(eccl.isend, a, nxt, tag=7),
           eccl.P2POp("send", b, nxt, tag=9)]
    eccl.batch_isend_irecv(ops, comm).wait()
    reg.deregister()
    rd = _ref_dtype(dtype)
    ga, gb = torch.empty(6, dtype=rd), torch.empty(3, dtype=rd)
    gops = [dist.P2POp(dist.irecv, gb, prv, tag=9), dist.P2POp(dist.irecv, ga, prv, tag=7),
            dist.P2POp(dist.isend, a.to(rd), nxt, tag=7), dist.P2POp(dist.isend, b.to(rd), nxt, tag=9)]
    for w in dist.batch_isend_irecv(gops):
        w.wait()
    _equal(ra, ga.to(dtype), "ring tag 7")
    _equal(rb, gb.to(dtype), "ring tag 9")
    _equal(ra, _data(prv, 6, dtype, salt=2), "ring tag 7 content")


def case_numpy(comm, rank, size):
    x = _data(rank, 5, torch.float32).numpy()
    comm.all_reduce(x)  # in place, numpy array
    ref = _data(rank, 5, torch.float32)
    dist.all_reduce(ref)
    np.testing.assert_array_equal(x, ref.numpy())

    g_in = _data(rank, 4, torch.int64).numpy()
    g_out = np.zeros(size * 4, dtype=np.int64)
    comm.all_gather(g_out, g_in)
    parts = [torch.empty(4, dtype=torch.int64) for _ in range(size)]
    dist.all_gather(parts, torch.from_numpy(g_in))
    np.testing.assert_array_equal(g_out, torch.cat(parts).numpy())

    sp = _splits(size)
    inp = _data(rank, sum(sp[rank]), torch.int32).numpy()
    out = np.zeros(sum(sp[j][rank] for j in range(size)), dtype=np.int32)
    comm.all_to_all_v(out, inp, [sp[j][rank] for j in range(size)], sp[rank])
    ref = torch.empty(out.shape[0], dtype=torch.int64)
    dist.all_to_all_single(ref, torch.from_numpy(inp).long(), [sp[j][rank] for j in range(size)], sp[rank])
    np.testing.assert_array_equal(out, ref.numpy().astype(np.int32))


def _cases():
    cases = []
    for dn, dt in DTYPES.items():
        p = functools.partial
        cases += [("all_gather[%s]" % dn, p(case_all_gather, dtype=dt)),
                  ("all_reduce_sum[%s]" % dn, p(case_all_reduce, dtype=dt, op="sum")),
                  ("all_reduce_max[%s]" % dn, p(case_all_reduce, dtype=dt, op="max")),
                  ("reduce_scatter[%s]" % dn, p(case_reduce_scatter, dtype=dt)),
                  ("broadcast[%s]" % dn, p(case_broadcast, dtype=dt)),
                  ("all_to_all_v[%s]" % dn, p(case_all_to_all_v, dtype=dt)),
                  ("batch_p2p_ring[%s]" % dn, p(case_batch_p2p_ring, dtype=dt))]
    cases += [("all_reduce_min[int64]", functools.partial(case_all_reduce, dtype=torch.int64, op="min")),
              ("all_reduce_prod[int64]", functools.partial(case_all_reduce, dtype=torch.int64, op="prod")),
              ("reduce_scatter_max[float32]", functools.partial(case_reduce_scatter, dtype=torch.float32, op="max")),
              ("all_reduce_enum", case_all_reduce_enum),
              ("all_gather_async", functools.partial(case_all_gather, dtype=torch.float32, async_op=True)),
              ("all_reduce_async", functools.partial(case_all_reduce, dtype=torch.int64, op="sum", async_op=True)),
              ("all_to_all_v_async", functools.partial(case_all_to_all_v, dtype=torch.float32, async_op=True)),
              ("all_to_all_equal_splits", case_all_to_all_equal),
              ("barrier", case_barrier),
              ("numpy_inputs", case_numpy)]
    return cases


CASES = _cases()


def _rank_main(rank, size, address, extra):
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % extra["port"], rank=rank, world_size=size)
    store = eccl.TcpStore.connect(address)
    comm = eccl.Group.create(store, "collectives", rank, size)
    assert (comm.rank, comm.size) == (rank, size)
    results = {}
    for name, case in CASES:
        try:
            case(comm, rank, size)
            results[name] = None
        except Exception:
            results[name] = traceback.format_exc()
    comm.destroy()
    store.close()
    dist.destroy_process_group()
    return results


@pytest.fixture(scope="module")
def outcomes():
    return run_ranks(_rank_main, SIZE, extra={"port": free_port()})


@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_collective(outcomes, name):
    failed = ["rank %d:\n%s" % (r, res[name]) for r, res in enumerate(outcomes) if res[name]]
    assert not failed, "\n".join(failed)
