#!/usr/bin/env python3
"""Connection pooling side by side: direct PostgreSQL, citus-proxy (pool.mode = transaction, routing
on and off), citus-proxy without pooling (pool.mode = off) and PgBouncer in transaction pooling,
in one interleaved run.

Two workloads:
  * `pgbench -S -M MODE -c N` for MODE in simple/extended/prepared (PgBouncer before 1.21 cannot
    serve prepared statements in transaction pooling: its failure is reported as such);
  * `pgbench -S -C -c 8`: a new connection per transaction, where a pooler's worth shows.
For each run it also records the intermediary's CPU per transaction (user + system, /proc).

Everything (PostgreSQL, the proxies, PgBouncer) starts on free loopback ports; the table reports
medians over the rounds and the ratio to direct.

Usage: loadtest/bench/pool_compare.py [--seconds 8] [--rounds 3] [--clients 8,32]
       [--modes simple,extended,prepared] [--out table.md]
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgbench_compare import (ROOT, start_bench_db, start_pgbouncer, start_proxy, proc_cpu, write_table,  # noqa: E402
                             stop_all)


def child_pid(pid):
    """PgBouncer runs under runuser (as root): its CPU is its child's."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else pid
    except OSError:
        return pid


def pgbench(port, args, seconds):
    """TPS of one run, or None when pgbench failed (the failure's first line is printed)."""
    cmd = ["pgbench", "-n", "-S", *args, "-T", str(seconds), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)", out.stdout)
    if out.returncode != 0 or not m:
        first = (out.stderr.strip().splitlines() or ["?"])[0]
        print(f"    pgbench failed on port {port}: {first}", flush=True)
        return None
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--modes", default="simple,extended,prepared")
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    clients = [int(c) for c in a.clients.split(",")]
    modes = a.modes.split(",")
    if not os.path.exists(os.path.join(ROOT, "target", "release", "citus-proxy")):
        subprocess.run(["cargo", "build", "--release", "-p", "citus-proxy"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="citus-proxy-pool-bench-")
    procs, data = [], None
    try:
        data, pg_port = start_bench_db(tmp, a.scale)
        pooled = ["--pool-mode", "transaction", "--pool-size", str(a.pool_size), "--auth-type", "trust",
                  "--limits-max-client-connections", "2000"]
        tx, tx_port = start_proxy(pg_port, extra=pooled)
        tx_plain, tx_plain_port = start_proxy(pg_port, routing=False, extra=pooled)
        relay, relay_port = start_proxy(pg_port)
        bouncer, bouncer_port = start_pgbouncer(tmp, pg_port, "transaction", a.pool_size)
        procs += [tx, tx_plain, relay, bouncer]
        targets = [("direct", pg_port, None), ("citus-proxy transaction", tx_port, tx.pid),
                   ("citus-proxy transaction, routing off", tx_plain_port, tx_plain.pid),
                   ("citus-proxy off (1:1)", relay_port, relay.pid), ("pgbouncer transaction", bouncer_port, child_pid(bouncer.pid))]
        workloads = [(f"-M {m} -c {c}", ["-M", m, "-c", str(c), "-j", "2"]) for c in clients for m in modes]
        workloads.append(("-C -c 8", ["-C", "-c", "8", "-j", "2"]))
        tps, cpu = {}, {}
        for r in range(a.rounds):
            for wname, wargs in workloads:
                for name, port, pid in targets:
                    before = proc_cpu(pid) if pid else 0.0
                    t = pgbench(port, wargs, a.seconds)
                    after = proc_cpu(pid) if pid else 0.0
                    tps.setdefault((wname, name), []).append(t)
                    if t and pid:
                        cpu.setdefault((wname, name), []).append((after - before) / (t * a.seconds) * 1e6)
                    shown = f"{t:>10.0f} tps" if t else "    failed"
                    print(f"round {r + 1} {wname:<22} {name:<38} {shown}", flush=True)
        names = [n for n, _, _ in targets]
        lines = [f"pgbench -S, scale {a.scale}, {a.seconds} s per run, {a.rounds} rounds interleaved; median TPS (ratio "
                 f"to direct). Pooled: pool.size {a.pool_size}, PgBouncer default_pool_size {a.pool_size}, "
                 "both in transaction pooling.", "",
                 "| workload | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for wname, _ in workloads:
            ok = [x for x in tps[(wname, "direct")] if x]
            d = statistics.median(ok) if ok else None
            cells = []
            for n in names:
                runs = tps[(wname, n)]
                if not all(runs):
                    cells.append("fails")
                    continue
                m = statistics.median(runs)
                cells.append(f"{m:.0f}" if n == "direct" or not d else f"{m:.0f} ({m / d:.2f})")
            lines.append(f"| {wname} | " + " | ".join(cells) + " |")
        lines += ["", "CPU of the intermediary per transaction (µs, median; user + system from /proc):", "",
                  "| workload | " + " | ".join(names[1:]) + " |", "|---" * len(names) + "|"]
        for wname, _ in workloads:
            cells = [f"{statistics.median(cpu[(wname, n)]):.1f}" if cpu.get((wname, n)) and all(tps[(wname, n)]) else "–"
                     for n in names[1:]]
            lines.append(f"| {wname} | " + " | ".join(cells) + " |")
        write_table(lines, a.out)
    finally:
        stop_all(procs, data, tmp)


if __name__ == "__main__":
    main()
