"""A toy MoE serving loop on CPU, integrated with eccl the way an engine would be.

    python3 -m eccl.examples.moe_serving --ranks 3 --steps 60

The launcher part starts ``--ranks`` processes with torchrun-style variables, plus one spare
process that joins later. Each rank holds S expert slots per layer as bf16 tensors (w1 [S, H, I],
w2 [S, I, H]) that EPLB rearranges in place. Every step, a router picks one expert per token with
a drifting skew; tokens go to the rank holding a replica (log2phy) with all_to_all_v, the expert
MLP runs there, and results come back the same way. Then the last rank leaves (scale-down) and
the spare process joins (scale-up) while the others keep serving. At the end every slot's weights
are checked against the checkpoint content of the expert the placement says it holds.
"""
import argparse
import os
import socket
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import eccl

L, E, S = 2, 8, 4  # MoE layers, logical experts, slots per rank (E <= ranks * S at every size)
H, I, T = 32, 64, 48  # hidden size, expert intermediate size, tokens per rank per step
GROUP = "moe"  # the elastic expert-parallel group's name in the store


def checkpoint(layer, expert):
    """(w1, w2) of an expert as a checkpoint would load them: deterministic per (layer, expert)."""
    g = torch.Generator().manual_seed(1009 * layer + expert)
    w1 = (torch.randn(H, I, generator=g) / H ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(I, H, generator=g) / I ** 0.5).to(torch.bfloat16)
    return w1, w2


def mlp(x, w1, w2):
    # float32 math on bf16 weights: the same function on every rank, so results are comparable
    return (F.gelu(x.float() @ w1.float()) @ w2.float()).to(torch.bfloat16)


def engine_tensors(rank, ranks, fill):
    """This rank's expert slots. EPLB's default initial placement is experts 0..E-1 rank-major,
    then copies; a joining process starts empty (eccl fills it)."""
    w1 = [torch.zeros(S, H, I, dtype=torch.bfloat16) for _ in range(L)]
    w2 = [torch.zeros(S, I, H, dtype=torch.bfloat16) for _ in range(L)]
    for layer in range(L if fill else 0):
        for s in range(S):
            a, b = checkpoint(layer, (rank * S + s) % E)
            w1[layer][s].copy_(a)
            w2[layer][s].copy_(b)
    return {"w1": w1, "w2": w2}


def route(step, layer, rank):
    """Top-1 expert per token. Popularity is Zipf-like around a hot expert that moves every 20
    steps, so a static placement goes out of balance: the reason EPLB exists."""
    hot = (step // 20 + 3 * layer) % E
    popularity = 1.0 / (1.0 + ((torch.arange(E) - hot) % E).float()) ** 1.5
    g = torch.Generator().manual_seed(7919 * step + 31 * layer + rank)
    return torch.multinomial(popularity, T, replacement=True, generator=g)


def moe_layer(comm, eplb, w, log2phy, layer, x, experts):
    """Dispatch tokens to expert replicas, run them, combine. Returns the layer's output."""
    phys = log2phy[layer][experts].long()  # physical replica = rank * S + slot
    dest, slot = phys // S, phys % S
    order = torch.argsort(dest, stable=True)  # all_to_all_v sends contiguous pieces per rank
    send = torch.bincount(dest, minlength=comm.size)
    recv = torch.empty_like(send)
    comm.all_to_all_v(recv, send)  # one count per peer: who sends me how many tokens
    sends, recvs = send.tolist(), recv.tolist()
    rx = torch.empty(sum(recvs), H, dtype=torch.bfloat16)
    rslot = torch.empty(sum(recvs), dtype=torch.int64)
    comm.all_to_all_v(rx, x[order], recvs, sends)
    comm.all_to_all_v(rslot, slot[order].contiguous(), recvs, sends)
    y = torch.empty_like(rx)
    for s in range(S):  # the weights are the engine tensors EPLB writes into at commits
        idx = (rslot == s).nonzero().squeeze(1)
        if idx.numel():
            y[idx] = mlp(rx[idx], w["w1"][layer][s], w["w2"][layer][s])
    eplb.record(layer, torch.bincount(rslot, minlength=S))  # tokens per local slot: EPLB's input
    back = torch.empty(T, H, dtype=torch.bfloat16)
    comm.all_to_all_v(back, y, sends, recvs)  # results return in the order they were sent
    out = torch.empty_like(back)
    out[order] = back
    return out


class Server:
    """One rank's serving state: the elastic group, its EPLB, the engine tensors."""

    def __init__(self, group, eplb, tensors, rank_label):
        self.group, self.eplb, self.w, self.label = group, eplb, tensors, rank_label
        self.log2phy = eplb.log2phy()  # re-read only when a step commits layers
        self.wrong_tokens = 0
        self.reference = {(l, e): checkpoint(l, e) for l in range(L) for e in range(E)}

    def step(self, step):
        comm = self.group.comm  # fetched each step: it changes at an elastic switch
        self.eplb.before_forward()
        g = torch.Generator().manual_seed(104729 * step + comm.rank)
        x = torch.randn(T, H, generator=g).to(torch.bfloat16)
        for layer in range(L):
            experts = route(step, layer, comm.rank)
            y = moe_layer(comm, self.eplb, self.w, self.log2phy, layer, x, experts)
            # Check against the checkpoint: a stale map or a half-copied expert would show here.
            want = torch.stack([mlp(x[i:i + 1], *self.reference[(layer, int(e))])[0] for i, e in enumerate(experts)])
            self.wrong_tokens += int((~torch.isclose(y.float(), want.float(), rtol=2e-2, atol=2e-2)).any(1).sum())
            x = x + y
        if self.eplb.after_forward():
            self.log2phy = self.eplb.log2phy()
        report = self.eplb.take_report()
        if report and comm.rank == 0:
            r = {k: ("n/a" if v is None else v) for k, v in report.items()}  # null: not measured this cycle
            print("[%s] step %3d cycle %s: imbalance %s -> %s, %s layers / %s slots changed, %s bytes sent"
                  % (self.label, step, r["cycle"], _fmt(r["imbalance_before"]), _fmt(r["imbalance_after"]),
                     r["layers_changed"], r["slots_changed"], r["bytes_sent"]), flush=True)

    def elastic(self, step, new_size, old_to_new):
        """Serve and step the transition until the group switched. True when this rank left."""
        while True:
            self.step(step)
            step += 1
            done, left = self.eplb.elastic_step(self.group, new_size, old_to_new)
            if done:
                if not left:
                    self.log2phy = self.eplb.log2phy()  # new group, new numbering
                return step, left

    def verify(self):
        """Every slot holds the checkpoint bytes of the expert the placement names."""
        rank = self.group.comm.rank
        placement = self.eplb.placement()
        bad = 0
        for layer in range(L):
            for s in range(S):
                e = int(placement[layer, rank, s])
                if e >= 0:
                    w1, w2 = self.reference[(layer, e)]
                    bad += not (torch.equal(self.w["w1"][layer][s], w1) and torch.equal(self.w["w2"][layer][s], w2))
        return bad


def _fmt(x):
    return "%.2f" % x if isinstance(x, float) else str(x)


def config(args):
    return dict(policy=args.policy, heat_steps=args.heat_steps, algorithm_steps=args.algorithm_steps, episodes=2)


def serve(args):
    """A rank of the initial world."""
    world, info, store = eccl.init_from_env()
    # The static world communicator carries the engine's other traffic (here: agreeing on the
    # run's start); expert parallelism lives on an elastic group because its membership changes.
    world.barrier()
    world.destroy()
    n, rank = info.size, info.rank
    group = eccl.ElasticGroup.join(store, GROUP, rank, n)
    tensors = engine_tensors(rank, n, fill=True)
    eplb = eccl.Eplb(group.comm, L, E, S, tensors, **config(args))
    srv = Server(group, eplb, tensors, "rank %d" % rank)
    phase = args.steps // 3
    step = 0
    for step in range(phase):
        srv.step(step)
    # Scale down: the last rank hands its experts over and leaves, while everyone serves.
    step, left = srv.elastic(phase, n - 1, list(range(n - 1)) + [-1])
    if left:
        print("[rank %d] left the group after step %d" % (rank, step), flush=True)
        return finish(store, info, srv, None)
    if rank == 0:
        print("scaled down to %d ranks (epoch %d)" % (group.comm.size, group.epoch), flush=True)
    for step in range(step, step + phase):
        srv.step(step)
    # Scale up: tell the spare process which epoch to join (and the step count, which only
    # drives the router's drift), then transition with it.
    if rank == 0:
        store.set("moe/join", "%d %d" % (group.epoch + 1, step + 1))
    step, _ = srv.elastic(step + 1, n, list(range(n - 1)))
    if rank == 0:
        print("scaled up to %d ranks (epoch %d)" % (group.comm.size, group.epoch), flush=True)
    for step in range(step, step + phase):
        srv.step(step)
    return finish(store, info, srv, group)


def join(args):
    """The spare process: joins the group at the epoch rank 0 announces."""
    info, store = eccl.bootstrap()  # connects to rank 0's store (RANK != 0: it does not serve)
    epoch, step = map(int, store.get("moe/join").split())
    tensors = engine_tensors(info.rank, info.size, fill=False)
    group, eplb = eccl.Eplb.join(store, GROUP, epoch, info.rank, info.size, L, E, S, tensors, **config(args))
    srv = Server(group, eplb, tensors, "joiner")
    for step in range(step, step + args.steps // 3):  # the same number of steps as the others
        srv.step(step)
    return finish(store, info, srv, group)


def finish(store, info, srv, group):
    """Verify, report, tear down. The store goes last on rank 0, which serves it."""
    code = 0
    if group is not None:
        bad = torch.tensor([srv.verify(), srv.wrong_tokens], dtype=torch.int64)
        group.comm.all_reduce(bad)  # every member's slots and tokens
        if group.comm.rank == 0:
            print("slots with wrong weights: %d, tokens with wrong output: %d" % tuple(bad.tolist()))
            print("OK" if not bad.any() else "FAILED", flush=True)
        code = 1 if bad.any() else 0
    srv.eplb.destroy()
    srv.group.destroy()
    me = os.environ["ECCL_MOE_ROLE"]
    store.set("moe/done/" + me, "1")
    if info.serves_store:
        store.wait(["moe/done/%d" % r for r in range(info.size)] + ["moe/done/joiner"])
    store.close()
    return code


def launch(args):
    """Starts the ranks like torchrun would, and the spare process; waits for all."""
    with socket.socket() as s:  # a free port for the store; MASTER_PORT is one below it
        s.bind(("127.0.0.1", 0))
        store_port = s.getsockname()[1]
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = []
    for role in [str(r) for r in range(args.ranks)] + ["joiner"]:
        rank = args.ranks - 1 if role == "joiner" else int(role)  # the joiner takes the freed rank
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(args.ranks), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(args.ranks), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store_port - 1),
                   ECCL_MOE_ROLE=role, OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        procs.append(subprocess.Popen([sys.executable, "-m", "eccl.examples.moe_serving"] + sys.argv[1:], env=env))
    deadline = time.monotonic() + args.timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append("timeout")
    for p in procs:
        if p.poll() is None:
            p.kill()  # by pid: only the processes started here
    if any(c != 0 for c in codes):
        print("process exit codes:", codes, file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=3, help="initial ranks (>= 2; E=%d <= (ranks-1)*%d)" % (E, S))
    ap.add_argument("--steps", type=int, default=60, help="serving steps, split over the three phases")
    ap.add_argument("--policy", default="swift", choices=["swift", "default", "flash"])
    ap.add_argument("--heat-steps", type=int, default=8)
    ap.add_argument("--algorithm-steps", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300, help="seconds before the launcher gives up")
    args = ap.parse_args()
    if args.ranks < 2 or E > (args.ranks - 1) * S:
        ap.error("--ranks must be >= 2 and leave room for %d experts after one rank leaves" % E)
    role = os.environ.get("ECCL_MOE_ROLE")
    if role is None:
        return launch(args)
    return join(args) if role == "joiner" else serve(args)


if __name__ == "__main__":
    sys.exit(main())
