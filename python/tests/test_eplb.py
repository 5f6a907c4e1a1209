"""EPLB over engine-owned bf16 expert tensors on 2 ranks: a hand-made map that forces every slot
to change (deterministic), then a skewed load the policy rebalances; after each phase every slot
must hold exactly the bytes of the expert the placement says, and the maps must agree. Also the
planner without an updater, and the Python-side checks of the engine tensors."""
import json
import math
import time

import numpy as np
import pytest
import torch

import eccl
from _multiproc import run_ranks

L, E, S = 2, 4, 3  # layers, experts, slots per rank
SHAPES = {"w13": (8, 16), "w2": (16, 8)}
# A target placement that moves data on every slot (initial: rank 0 [0,1,2], rank 1 [3,0,1]).
TARGET = [[[3, 0, 1], [0, 1, 2]],
          [[2, 3, 0], [1, 2, 3]]]


def content(layer, expert, name):
    """What a checkpoint would load for (layer, expert): small integers, exact in bf16."""
    shape = SHAPES[name]
    v = torch.arange(math.prod(shape)) % 7 + layer * 100 + expert * 10
    return (v if name == "w13" else -v).to(torch.bfloat16).view(shape)


def expert_map_json(target):
    return {"moe_layer_count": len(target),
            "layer_list": [{"layer_id": l, "device_count": len(ranks),
                            "device_list": [{"device_id": r, "device_expert": row} for r, row in enumerate(ranks)]}
                           for l, ranks in enumerate(target)]}


def engine_tensors(rank, ranks):
    """Per name, L tensors [S, ...] filled per the default initial placement."""
    tensors = {name: [torch.empty((S,) + shape, dtype=torch.bfloat16) for _ in range(L)] for name, shape in SHAPES.items()}
    for name, per_layer in tensors.items():
        for l in range(L):
            for s in range(S):
                per_layer[l][s] = content(l, (rank * S + s) % E, name)
    return tensors


def verify(eplb, rank, tensors):
    p = eplb.placement()
    assert p.dtype == torch.int32 and tuple(p.shape) == (L, eplb.ranks, S)
    em, lp = eplb.maps()
    assert tuple(em.shape) == (L, E) and tuple(lp.shape) == (L, E)
    assert torch.equal(eplb.expert_map(), em) and torch.equal(eplb.log2phy(), lp)
    assert torch.equal(eplb.expert_map(1), em[1])
    for l in range(L):
        assert set(p[l].flatten().tolist()) >= set(range(E)), "layer %d lost an expert: %s" % (l, p[l])
        for s in range(S):
            e = int(p[l, rank, s])
            if e < 0:
                continue
            for name in SHAPES:
                assert torch.equal(tensors[name][l][s], content(l, e, name)), \
                    "layer %d slot %d should hold expert %d's %s" % (l, s, e, name)
        for e in range(E):
            local = [s for s in range(S) if int(p[l, rank, s]) == e]
            assert int(em[l, e]) == (local[0] if local else -1), "expert_map[%d][%d]" % (l, e)
            r, s = divmod(int(lp[l, e]), S)
            assert int(p[l, r, s]) == e, "log2phy[%d][%d] = %d does not hold it" % (l, e, int(lp[l, e]))


def step(eplb, rank, per_layer=False):
    eplb.before_forward()
    p = eplb.placement()
    # Skewed: the slots holding expert 0 get most tokens.
    counts = torch.tensor([[1000 if int(p[l, rank, s]) == 0 else 10 for s in range(S)] for l in range(L)],
                          dtype=torch.int64)
    if per_layer:
        for l in range(L):
            eplb.record(l, counts[l].numpy().astype(np.float32))
    else:
        eplb.record(-1, counts)
    return eplb.after_forward()


def _rank_main(rank, size, address, extra):
    store = eccl.TcpStore.connect(address)
    comm = eccl.Communicator.from_store(store, "eplb", rank, size)
    tensors = engine_tensors(rank, size)
    eplb = eccl.Eplb(comm, L, E, S, tensors, policy="swift", heat_steps=4, algorithm_steps=2, episodes=2)
    verify(eplb, rank, tensors)

    # Phase A: a hand-made map (same call, same step, every rank; dict or JSON alike).
    target = expert_map_json(TARGET)
    eplb.apply_map(target if rank == 0 else json.dumps(target))
    changed_total = 0
    for _ in range(12):
        changed_total += step(eplb, rank)
        if eplb.placement().tolist() == TARGET:
            break
    assert eplb.placement().tolist() == TARGET, eplb.placement().tolist()
    assert changed_total >= L
    verify(eplb, rank, tensors)

    # Phase B: the policy's cycles under a skewed load.
    # At least 30 steps, and until a cycle reported: the policy runs on a background thread, so
    # a count of fast steps alone may end before it finishes on a loaded machine. Every rank
    # must take the same number of steps, so they agree on whether to go on (a 1-element max).
    reports = []
    give_up = time.monotonic() + 60
    i = 0
    while True:
        step(eplb, rank, per_layer=bool(i % 2))
        i += 1
        r = eplb.take_report()
        if r is not None:
            reports.append(r)
        more = torch.tensor([1 if (i < 30 or not reports) and time.monotonic() < give_up else 0], dtype=torch.int32)
        comm.all_reduce(more, op="max")
        if not int(more):
            break
        time.sleep(0.001)
    verify(eplb, rank, tensors)
    exported = json.loads(eplb.export_map())
    p = eplb.placement()
    assert exported["moe_layer_count"] == L
    for layer in exported["layer_list"]:
        for dev in layer["device_list"]:
            assert dev["device_expert"] == p[layer["layer_id"], dev["device_id"]].tolist()
    eplb.destroy()
    comm.destroy()
    store.close()
    return reports


def test_eplb_moves_weights_and_maps():
    results = run_ranks(_rank_main, 2)
    reports = results[0]
    assert reports, "no cycle report within 60 s (heat_steps=4, algorithm_steps=2)"
    for key in ("cycle", "imbalance_before", "imbalance_after", "layers_changed", "slots_changed", "bytes_sent"):
        assert key in reports[0], reports[0]
    assert [r["cycle"] for r in results[0]] == [r["cycle"] for r in results[1]]


def _valid_map(m, layers, ranks, slots, experts):
    assert m["moe_layer_count"] == layers
    for layer in m["layer_list"]:
        assert layer["device_count"] == ranks and len(layer["device_list"]) == ranks
        held = [e for d in layer["device_list"] for e in d["device_expert"]]
        assert all(len(d["device_expert"]) == slots for d in layer["device_list"])
        assert set(held) == set(range(experts)), held


def test_plan_default_policy_on_skewed_load():
    loads = np.array([[1000, 10, 10, 10], [5, 5, 500, 5]])
    m = eccl.plan("default", ranks=2, slots=3, loads=loads)
    _valid_map(m, 2, 2, 3, 4)
    # Episodes ([L, episodes, E]) and a current map, torch input.
    episodes = torch.tensor([[[900, 10, 10, 10], [1100, 10, 10, 10]], [[5, 5, 400, 5], [5, 5, 600, 5]]])
    m2 = eccl.plan("swift", ranks=2, slots=3, loads=episodes, current_map=m)
    _valid_map(m2, 2, 2, 3, 4)


def test_plan_bad_request_names_the_field():
    with pytest.raises(eccl.InvalidArgument, match="loads"):
        eccl.plan("default", ranks=2, slots=3, loads=np.array([[1.0, float("nan")]]))
    with pytest.raises(eccl.InvalidArgument):
        eccl.plan("no-such-policy", ranks=2, slots=3, loads=np.ones((1, 4)))


def test_engine_tensor_checks(solo):
    with pytest.raises(eccl.InvalidArgument, match="dimension 0 must be the 2 slots"):
        eccl.Eplb(solo, 1, 2, 2, {"w": [torch.empty(3, 4)]})
    with pytest.raises(eccl.InvalidArgument, match="must be contiguous"):
        eccl.Eplb(solo, 1, 2, 2, {"w": [torch.empty(2, 4, 3).transpose(1, 2)]})
    with pytest.raises(eccl.InvalidArgument, match="has 1 layers' tensors, expected 2"):
        eccl.Eplb(solo, 2, 2, 2, {"w": [torch.empty(2, 4)]})
    with pytest.raises(eccl.InvalidArgument, match=r"tensors\['w'\]\[1\] is float32"):
        eccl.Eplb(solo, 2, 2, 2, {"w": [torch.empty(2, 4, dtype=torch.bfloat16), torch.empty(2, 4)]})
    # Shapes the C side refuses, naming the field, instead of crashing (experts 0 divided by zero).
    with pytest.raises(eccl.InvalidArgument, match='"experts" must be positive'):
        eccl.Eplb(solo, 1, 0, 2, {"w": [torch.empty(2, 4)]})
    with pytest.raises(eccl.InvalidArgument, match="5 experts do not fit 1 ranks x 2 slots"):
        eccl.Eplb(solo, 1, 5, 2, {"w": [torch.empty(2, 4)]})


def _failed_transition(rank, size, address, extra):
    """A scale-up whose joiner never comes: the step fails (the standby build times out), later
    steps say the transition is over instead of crashing, and the updater serves on. While the
    eplb runs, the group refuses to be switched or destroyed behind its back."""
    store = eccl.TcpStore.connect(address)
    group = eccl.ElasticGroup.join(store, "failed-grow", rank, size)
    tensors = engine_tensors(rank, size)
    eplb = eccl.Eplb(group.comm, L, E, S, tensors, policy="default", heat_steps=4, algorithm_steps=2, episodes=2)
    with pytest.raises(eccl.InvalidArgument, match="an eplb runs on it"):
        group.destroy()
    deadline = time.monotonic() + 60
    with pytest.raises(eccl.EcclError, match="rank 2|addr/2"):
        while time.monotonic() < deadline:  # the standby build gives up at ECCL_TIMEOUT (4 s)
            eplb.before_forward()
            eplb.after_forward()
            eplb.elastic_step(group, 3, [0, 1])
            time.sleep(0.01)
    for step in range(12):  # the old group and the updater are still serving
        eplb.before_forward()
        eplb.record(-1, torch.ones(L * S, dtype=torch.int64) * (step + 1))
        eplb.after_forward()
    x = torch.ones(2)
    group.comm.all_reduce(x)
    assert x.tolist() == [2.0, 2.0]
    verify(eplb, rank, tensors)
    eplb.destroy()
    group.destroy()
    store.close()


def test_a_failed_elastic_step_leaves_the_old_group_serving():
    run_ranks(_failed_transition, 2, env={"ECCL_TIMEOUT": "4"})
