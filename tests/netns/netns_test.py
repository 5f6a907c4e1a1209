#!/usr/bin/env python3
"""Multi-host test over network namespaces this test creates: a switch namespace holding a
bridge, three "host" namespaces each wired to it by a veth pair (10.<n>.0.1-3), the store on host
0, ranks 0 and 1 on host 0 and ranks 2 and 3 on hosts 1 and 2 (ECCL_TRANSPORT=auto with a host
id per namespace: shared memory inside host 0, sockets across). Scenarios: clean; 5% packet loss
and a 20 MB/s rate cap (nftables; this kernel has no netem); a link down for 3 s mid-run; a link
down for good mid-run. Each must give correct bytes or a clear error within the deadline, and
no rank may hang or see a wrong byte. Exit 77 (skipped) without root, namespaces or nft.
Everything started is reaped by pid; the namespaces are deleted at the end."""
import argparse
import os
import shutil
import subprocess
import sys
import time

TAG = f"e{os.getpid() % 100000}"
NET = 10 + os.getpid() % 200
SW = f"{TAG}sw"
HOSTS = [f"{TAG}h{i}" for i in range(3)]
IP = [f"10.{NET}.0.{i + 1}" for i in range(3)]
RANK_HOSTS = [0, 0, 1, 2]
TIMEOUT_S = 10


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def ns(host, *cmd, check=True):
    return sh("ip", "netns", "exec", host, *cmd, check=check)


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(77)


def build_topology():
    sh("ip", "netns", "add", SW)
    ns(SW, "ip", "link", "add", "br0", "type", "bridge")
    ns(SW, "ip", "link", "set", "br0", "up")
    for i, h in enumerate(HOSTS):
        sh("ip", "netns", "add", h)
        ns(h, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"{TAG}a{i}", "netns", h, "type", "veth", "peer", "name", f"{TAG}b{i}", "netns", SW)
        ns(h, "ip", "link", "set", f"{TAG}a{i}", "name", "eth0")
        ns(h, "ip", "addr", "add", f"{IP[i]}/24", "dev", "eth0")
        ns(h, "ip", "link", "set", "eth0", "up")
        ns(SW, "ip", "link", "set", f"{TAG}b{i}", "master", "br0")
        ns(SW, "ip", "link", "set", f"{TAG}b{i}", "up")


def teardown():
    for h in HOSTS + [SW]:
        sh("ip", "netns", "del", h, check=False)


def nft(host, rule):
    ns(host, "nft", "add", "table", "inet", "eccl")
    for chain, hook in (("in", "input"), ("out", "output")):
        ns(host, "nft", "add", "chain", "inet", "eccl", chain, "{", "type", "filter", "hook", hook, "priority", "0", ";", "}")
        ns(host, "nft", "add", "rule", "inet", "eccl", chain, "ip", "saddr", "!=", "127.0.0.0/8", *rule.split())


def clear_nft(host):
    ns(host, "nft", "delete", "table", "inet", "eccl", check=False)


def link(i, up):
    ns(SW, "ip", "link", "set", f"{TAG}b{i}", "up" if up else "down")


class Store:
    def __init__(self, store_bin, workdir):
        self.port_file = os.path.join(workdir, "port")
        self.log = open(os.path.join(workdir, "store.log"), "w")
        self.p = subprocess.Popen(["ip", "netns", "exec", HOSTS[0], store_bin, "--host", IP[0], "--port", "0",
                                   "--port-file", self.port_file], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(500):
            if os.path.exists(self.port_file):
                break
            time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError("eccl-store never wrote its port file")
        self.address = f"{IP[0]}:{open(self.port_file).read().strip()}"

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def run_ranks(rank_bin, store, iters, nbytes, during=None):
    """Starts the four ranks; `during(outputs)` runs once rank 3 printed 'iter 3'. Returns
    [(exit code, output)], killing (by pid) any rank still alive after the deadline."""
    procs, outs = [], []
    for r, h in enumerate(RANK_HOSTS):
        env = dict(os.environ, ECCL_TRANSPORT="auto", ECCL_HOST_ID=f"host{h}", ECCL_LOG_LEVEL="warn")
        out = open(f"/tmp/{TAG}.rank{r}", "w+")
        outs.append(out)
        procs.append(subprocess.Popen(["ip", "netns", "exec", HOSTS[h], rank_bin, store.address, str(r), "4",
                                       str(iters), str(nbytes), str(TIMEOUT_S)], stdout=out, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + TIMEOUT_S * 3 + 30
    results = []
    try:
        if during:
            while time.monotonic() < deadline and all(p.poll() is None for p in procs):
                with open(f"/tmp/{TAG}.rank3") as f:
                    if "iter 3\n" in f.read():
                        break
                time.sleep(0.05)
            if not all(p.poll() is None for p in procs):
                raise RuntimeError("a rank ended before the fault could be injected")
            during()
        for r, p in enumerate(procs):
            left = max(0.1, deadline - time.monotonic())
            try:
                p.wait(left)
            except subprocess.TimeoutExpired:
                results.append((None, "HUNG"))
                continue
            outs[r].seek(0)
            results.append((p.returncode, outs[r].read()))
    finally:
        for p in procs:  # by pid, whatever happened above
            if p.poll() is None:
                p.kill()
                p.wait()
        for r, out in enumerate(outs):
            out.close()
            os.unlink(f"/tmp/{TAG}.rank{r}")
    return results


def check(name, results, must_succeed, must_fail=()):
    bad = [f"rank {r} should have failed (its link was down for good) but exited {results[r][0]}"
           for r in must_fail if results[r][0] != 3]
    for r, (code, out) in enumerate(results):
        if code is None:
            bad.append(f"rank {r} hung past the deadline")
        elif "CORRUPT" in out:
            bad.append(f"rank {r} saw a wrong byte: {out[-300:]}")
        elif code == 0:
            continue
        elif must_succeed:
            bad.append(f"rank {r} failed (exit {code}): {out[-500:]}")
        elif code != 3 or "error:" not in out:
            bad.append(f"rank {r} ended without a clear error (exit {code}): {out[-500:]}")
    status = "ok" if not bad else "FAILED"
    codes = [c for c, _ in results]
    print(f"{name}: {status} (exit codes {codes})")
    for b in bad:
        print("   " + b)
    if not must_succeed:
        for r, (code, out) in enumerate(results):
            if code == 3:
                print(f"   rank {r}: {out.strip().splitlines()[-1][:240]}")
    return not bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rank-bin", required=True)
    ap.add_argument("--store-bin", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        skip("needs root to create network namespaces")
    if not shutil.which("ip"):
        skip("iproute2 is not installed")
    have_nft = shutil.which("nft") is not None
    workdir = f"/tmp/{TAG}.work"
    os.makedirs(workdir, exist_ok=True)
    try:
        try:
            build_topology()
        except subprocess.CalledProcessError as e:
            skip(f"cannot create namespaces: {e.stderr.strip()}")
        store = None
        ok = True
        try:
            store = Store(a.store_bin, workdir)
            ok &= check("clean", run_ranks(a.rank_bin, store, 20, 1 << 20), True)
            if have_nft:
                nft(HOSTS[2], "numgen random mod 100 < 5 drop")
                ok &= check("5% packet loss on host 2", run_ranks(a.rank_bin, store, 10, 1 << 20), True)
                clear_nft(HOSTS[2])
                nft(HOSTS[1], "limit rate over 20 mbytes/second drop")
                ok &= check("20 MB/s rate cap on host 1", run_ranks(a.rank_bin, store, 10, 1 << 20), True)
                clear_nft(HOSTS[1])
            else:
                print("packet loss and rate cap: skipped (nft is not installed)")

            def blip():
                link(2, False)
                time.sleep(3)
                link(2, True)
            ok &= check("host 2's link down for 3 s mid-run", run_ranks(a.rank_bin, store, 20, 1 << 20, blip), False)

            ok &= check("host 2's link down for good mid-run",
                        run_ranks(a.rank_bin, store, 200, 1 << 20, lambda: link(2, False)), False, must_fail=[3])
            link(2, True)
        except RuntimeError as e:
            print(f"FAILED: {e}")
            ok = False
        finally:
            if store:
                store.stop()
        sys.exit(0 if ok else 1)
    finally:
        teardown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
