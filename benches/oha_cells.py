#!/usr/bin/env python3
"""Issue 16's own measurement, with the issue's own client: `oha`, 32 connections, 4 s rounds,
medians of 3, harness-guard beside the baseline responder, server CPU read from /proc/<pid>/stat
over each round.

    cargo build --release --example loadgen
    cargo install oha --locked --root target/oha
    python3 benches/oha_cells.py [--oha target/oha/bin/oha] [--rounds 3] [--seconds 4] [--conns 32]
                                 [--pin CLIENT_CPUS SERVER_CPUS] [--only WORKLOAD] [--loadgen PATH]

Both servers are `loadgen`'s children, so they are what `loadgen` measures: harness-guard as
`harness-guard serve` runs it (built-in default cluster from examples/cluster, its log at the
default level, JSON, written to a file), and the baseline (hyper + rustls: read the body, take the
uid, answer allowed). Per cell: one 1 s warm-up of each, then ROUNDS rounds, harness-guard and the
baseline alternating. oha sends one request at a time per connection on both protocols (its
default, which the issue did not change), so HTTP/2 here is 32 connections of one stream each.
With --pin, oha runs on the first CPU list and both servers on the second (taskset). --only runs
the workloads whose name contains the text; --loadgen measures another build's `loadgen` (a copy
kept aside) in place of this tree's. harness-guard's log goes to a directory of its own, apart
from its certificate's: its certificate watcher watches that directory, as it watches a mounted
Secret in a pod, where nothing else is written.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(REPO, "target/release/examples/loadgen")
WORKLOADS = [
    ("pod mutation", "/mutate", "tests/fixtures/admission-reviews/kagent/pod-sandbox-create.mutating.json"),
    ("validation, allowed", "/validate", "examples/reviews/harness-good.json"),
    # The body the issue measured validation with (a real apiserver's; allowed on the built-in default).
    ("validation, issue's body", "/validate", "tests/fixtures/admission-reviews/kagent/agentharness-create.validating.json"),
    ("validation, denied", "/validate", "examples/reviews/harness-wrong-key.json"),
]
# USER_HZ: /proc/<pid>/stat counts CPU time in these ticks.
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_us(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_US


def start(loadgen, args, stdout, stderr_path, cpus=None):
    """Starts a `loadgen` child (on `cpus` only, when given); returns it and the address it printed
    (`READY addr` on stderr)."""
    err = open(stderr_path, "w")
    pin = ["taskset", "-c", cpus] if cpus else []
    child = subprocess.Popen(pin + [loadgen] + args, stdout=stdout, stderr=err)
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(stderr_path) as f:
            for line in f:
                if line.startswith("READY "):
                    return child, line.split()[1]
        if child.poll() is not None:
            sys.exit(f"{args[0]} exited: {open(stderr_path).read()}")
        time.sleep(0.05)
    child.kill()
    sys.exit(f"{args[0]} did not print READY within 20 s")


def oha(binary, addr, path, body, h2, seconds, conns, cpus=None):
    """One round: oha's JSON summary."""
    cmd = ["taskset", "-c", cpus] if cpus else []
    cmd += [binary, "--no-tui", "--output-format", "json", "--insecure", "-z", f"{seconds}s", "-c", str(conns)]
    cmd += ["-m", "POST", "-H", "content-type: application/json", "-D", body]
    if h2:
        cmd.append("--http2")
    cmd.append(f"https://{addr}{path}?timeout=10s")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def measured(binary, child, addr, path, body, h2, seconds, conns, cpus=None):
    before = cpu_us(child.pid)
    report = oha(binary, addr, path, body, h2, seconds, conns, cpus)
    cpu = cpu_us(child.pid) - before
    codes = report.get("statusCodeDistribution", {})
    ok = int(codes.get("200", 0))
    others = sum(int(n) for code, n in codes.items() if code != "200")
    return {
        "rps": ok / report["summary"]["total"],
        "p99_ms": report["latencyPercentiles"]["p99"] * 1000,
        "cpu_us": cpu / max(ok, 1),
        # Requests still in flight when the round's time is up are cut off by oha, not failed.
        "failed": others + sum(int(n) for e, n in report.get("errorDistribution", {}).items()
                               if e != "aborted due to deadline"),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oha", default="oha")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=4)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--only", help="run only the workloads whose name contains this text")
    p.add_argument("--loadgen", default=LOADGEN, help="the loadgen binary to run (default: this tree's release build)")
    p.add_argument("--pin", nargs=2, metavar=("CLIENT_CPUS", "SERVER_CPUS"),
                   help="run oha and the servers on separate CPUs (taskset lists, e.g. 0 1)")
    a = p.parse_args()
    client_cpus, server_cpus = a.pin or (None, None)
    if not os.access(a.loadgen, os.X_OK):
        sys.exit("build it first: cargo build --release --example loadgen")
    workloads = [w for w in WORKLOADS if not a.only or a.only in w[0]]
    if not workloads:
        sys.exit(f"no workload's name contains {a.only!r}")
    with tempfile.TemporaryDirectory(prefix="harness-guard-oha-") as d:
        # A throwaway serving certificate for loopback (oha runs with --insecure).
        cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True)
        os.mkdir(os.path.join(d, "log"))
        log = open(os.path.join(d, "log", "harness-guard.log"), "w")
        hg_args = ["serve-harness-guard", "--listen", "127.0.0.1:0", "--health-listen", f"127.0.0.1:{free_port()}",
                   "--tls-cert-file", cert, "--tls-key-file", key, "--manifests", os.path.join(REPO, "examples/cluster")]
        children = []
        try:
            hg, hg_addr = start(a.loadgen, hg_args, log, os.path.join(d, "hg.err"), server_cpus)
            children.append(hg)
            base, base_addr = start(a.loadgen, ["serve-baseline", cert, key], subprocess.DEVNULL,
                                    os.path.join(d, "base.err"), server_cpus)
            children.append(base)
            pinned = f"; oha on CPUs {client_cpus}, the servers on {server_cpus}" if a.pin else ""
            print(f"# oha {a.conns} connections, {a.seconds} s rounds, median of {a.rounds}; "
                  f"harness-guard logs at its default level, JSON, to a file{pinned}")
            print("| workload | proto | hg req/s | base req/s | thru ratio | hg CPU µs/req | base CPU µs/req "
                  "| CPU ratio | hg p99 ms | base p99 ms | p99 ratio | failed |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for name, path, body in workloads:
                body = os.path.join(REPO, body)
                for h2 in (False, True):
                    run = lambda child, addr, s: measured(a.oha, child, addr, path, body, h2, s, a.conns, client_cpus)
                    run(hg, hg_addr, 1)
                    run(base, base_addr, 1)
                    hs, bs = [], []
                    for _ in range(a.rounds):
                        hs.append(run(hg, hg_addr, a.seconds))
                        bs.append(run(base, base_addr, a.seconds))
                    med = lambda rs, k: statistics.median(r[k] for r in rs)
                    h = {k: med(hs, k) for k in ("rps", "p99_ms", "cpu_us")}
                    b = {k: med(bs, k) for k in ("rps", "p99_ms", "cpu_us")}
                    failed = sum(r["failed"] for r in hs + bs)
                    print(f"| {name} | {'h2' if h2 else 'http/1.1'} | {h['rps']:.0f} | {b['rps']:.0f} "
                          f"| {h['rps'] / b['rps']:.2f} | {h['cpu_us']:.1f} | {b['cpu_us']:.1f} "
                          f"| {h['cpu_us'] / b['cpu_us']:.2f} | {h['p99_ms']:.2f} | {b['p99_ms']:.2f} "
                          f"| {h['p99_ms'] / b['p99_ms']:.2f} | {failed} |", flush=True)
        finally:
            for child in children:
                child.kill()
                child.wait()


if __name__ == "__main__":
    main()
