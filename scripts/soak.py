#!/usr/bin/env python3
"""Opt-in soak (ECCL_SOAK_MINUTES=N scripts/test.sh): runs the main job over and over with random
sizes, policies and scale targets for N minutes. Most runs must pass their own checksum check of
every expert replica; about one in three has a random rank SIGKILLed at a random moment, and
then every run must end (no hang) and the survivors must fail naming a rank, not time out.
Processes are reaped by pid; a run that outlives its deadline is a failure."""
import argparse
import re
import os
import random
import signal
import subprocess
import sys
import time


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def one_run(demo, rng, log):
    ranks = rng.randint(2, 5)
    scale_to = rng.randint(2, 6)
    slots = rng.randint(4, 8)
    experts = rng.randint(slots, min(ranks, scale_to) * slots)
    args = [demo, "--ranks", str(ranks), "--scale-to", str(scale_to), "--layers", str(rng.randint(1, 4)),
            "--experts", str(experts), "--slots", str(slots), "--expert-bytes", str(1536 * rng.randint(1, 64)),
            "--steps", str(rng.randint(20, 60)), "--policy", rng.choice(["default", "swift", "flash"]),
            "--timeout", "30"]
    fault = rng.random() < 0.2  # the demo's own fault scenario: it must recover and succeed
    if fault:
        ranks = max(ranks, 3)
        slots = max(slots, -(-experts // (ranks - 1)))
        steps = rng.randint(20, 60)
        args = [demo, "--ranks", str(ranks), "--layers", str(rng.randint(1, 4)), "--experts", str(experts),
                "--slots", str(min(slots, experts)), "--expert-bytes", str(1536 * rng.randint(1, 64)),
                "--steps", str(steps), "--policy", rng.choice(["default", "swift", "flash"]), "--timeout", "30",
                "--kill-rank", str(rng.randrange(ranks)), "--kill-at-step", str(rng.randrange(steps))]
    kill = not fault and rng.random() < 0.35
    with open(log, "w") as out:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        killed = None
        deadline = time.monotonic() + 300
        if kill:
            time.sleep(rng.uniform(0.2, 3.0))
            # Not the store's process: the demo runs it apart so that no rank's crash takes it down.
            text = open(log).read()
            store = re.search(r"own process \(pid (\d+)\)", text)
            kids = [k for k in children(p.pid) if not store or k != int(store.group(1))]
            if kids and p.poll() is None:
                killed = rng.choice(kids)
                os.kill(killed, signal.SIGKILL)
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if p.poll() is None:
            for k in children(p.pid):
                os.kill(k, signal.SIGKILL)
            p.kill()
            p.wait()
            return False, f"HUNG: {' '.join(args)}"
    text = open(log).read()
    if fault:
        ok = p.returncode == 0 and "recovered:" in text and "eccl-demo ok" in text
        return ok, ("ok (recovered from --kill-rank)" if ok else f"FAILED to recover: {' '.join(args)}")
    if killed is None:
        ok = p.returncode == 0 and "expert replicas" in text and "eccl-demo ok" in text
        return ok, ("ok" if ok else f"FAILED without a kill (exit {p.returncode}): {' '.join(args)}")
    # A kill may land after the job finished; otherwise the job fails and says who.
    if p.returncode == 0:
        return True, "ok (the kill came too late to matter)"
    # Survivors must fail fast with an error: not hang until the launcher's deadline, not crash.
    ok = ("timed out" not in text and "did not finish before the deadline" not in text
          and "killed by signal" not in text.replace(f"(pid {killed}) was killed by signal", "") and "rank" in text)
    return ok, ("ok (failed fast after a kill)" if ok else f"BAD FAILURE after killing pid {killed}: {' '.join(args)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    demo = os.path.join(a.build, "apps/eccl-demo/eccl-demo")
    rng = random.Random(a.seed)
    log = os.path.join(a.build, "soak-last.log")
    end = time.monotonic() + a.minutes * 60
    runs = failures = 0
    print(f"soak: seed {a.seed}, {a.minutes} min")
    while time.monotonic() < end:
        ok, what = one_run(demo, rng, log)
        runs += 1
        if not ok:
            failures += 1
            print(what)
            print(open(log).read()[-3000:])
    print(f"soak: {runs} runs, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
