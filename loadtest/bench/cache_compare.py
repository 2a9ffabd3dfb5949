#!/usr/bin/env python3
"""The result cache side by side: direct PostgreSQL vs citus-proxy answering from its in-process
tier vs citus-proxy with Redis (every hit validated in Redis), in one run, interleaved, repeated;
plus the p50 of a bare Redis GET on the same machine for comparison with a cache hit.

Workloads (pgbench custom scripts, -M simple and -M prepared):
  count  SELECT count(*) FROM pgbench_accounts           (an aggregation over every row)
  point  SELECT abalance FROM pgbench_accounts WHERE aid = random(1, KEYS)
The cached proxies opt pgbench_accounts in (`cache.tables`); each run is preceded by a warm-up,
and the hit ratio of the measured run is reported from the proxies' own counters (SHOW CACHE).

Usage: loadtest/bench/cache_compare.py [--seconds 8] [--rounds 3] [--clients 8] [--keys 1000]
       [--scale 10] [--out table.md]
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgbench_compare import ROOT, free_port, start_bench_db, start_proxy, stop_all, wait_port, write_table  # noqa: E402


def start_redis(tmp):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def script(tmp, name, keys):
    path = os.path.join(tmp, f"{name}.sql")
    with open(path, "w") as f:
        if name == "count":
            f.write("SELECT count(*) FROM pgbench_accounts;\n")
        else:
            f.write(f"\\set aid random(1, {keys})\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
    return path


def pgbench(port, path, mode, clients, seconds, log_dir=None):
    cmd = ["pgbench", "-n", "-f", path, "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
           "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    if log_dir:
        cmd += ["-l", "--log-prefix", os.path.join(log_dir, "tx")]
    out = subprocess.run(cmd + ["bench"], capture_output=True, text=True, cwd=log_dir)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
    if not m:
        sys.exit(f"pgbench failed on port {port}: {out.stdout}\n{out.stderr}")
    return float(m.group(1))


def p50_from_logs(log_dir):
    """Median per-transaction latency (microseconds) from pgbench -l logs, which are then removed."""
    lat = []
    for name in os.listdir(log_dir):
        if name.startswith("tx"):
            with open(os.path.join(log_dir, name)) as f:
                lat += [int(line.split()[2]) for line in f if line.strip()]
            os.remove(os.path.join(log_dir, name))
    return statistics.median(lat) if lat else float("nan")


def admin_value(port, name):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                          "citus_proxy", "-c", "SHOW CACHE"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        k, _, v = line.partition("|")
        if k == name:
            return int(v)
    sys.exit(f"SHOW CACHE on {port} has no {name}: {out.stdout}{out.stderr}")


def redis_get_p50(port, seconds):
    subprocess.run(["redis-cli", "-p", str(port), "set", "key:000000000000", "x" * 100], capture_output=True, check=True)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "1", "-n", str(20000 * seconds), "-t", "get", "--csv"],
                         capture_output=True, text=True)
    rows = [r for r in out.stdout.splitlines() if r.startswith('"GET"')]
    header = [h.strip('"') for h in out.stdout.splitlines()[0].split(",")]
    if not rows or "p50_latency_ms" not in header:
        sys.exit(f"redis-benchmark gave no p50: {out.stdout}{out.stderr}")
    cells = [c.strip('"') for c in rows[0].split(",")]
    return float(cells[header.index("p50_latency_ms")]) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(ROOT, "target", "release", "citus-proxy")):
        subprocess.run(["cargo", "build", "--release", "-p", "citus-proxy"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="citus-proxy-cache-bench-")
    procs, data = [], None
    try:
        data, pg_port = start_bench_db(tmp, a.scale)
        redis, redis_port = start_redis(tmp)
        procs.append(redis)
        common = ["--cache-tables", "pgbench_accounts=600s", "--admin-users", "postgres"]
        mem, mem_port = start_proxy(pg_port, extra=common)
        shared, shared_port = start_proxy(pg_port, extra=common + ["--cache-redis-url", f"redis://127.0.0.1:{redis_port}",
                                                                   "--cache-redis-timeout", "50ms"])
        procs += [mem, shared]
        targets = [("direct", pg_port), ("proxy, memory tier", mem_port), ("proxy, Redis tier", shared_port)]
        scripts = {w: script(tmp, w, a.keys) for w in ("count", "point")}
        tps, p50, ratio = {}, {}, {}
        for r in range(a.rounds):
            for workload in ("count", "point"):
                for mode in ("simple", "prepared"):
                    for name, port in targets:
                        cached = port != pg_port
                        if cached:  # warm up: every key cached before the measured run
                            pgbench(port, scripts[workload], mode, a.clients, 2)
                            hits0, miss0 = admin_value(port, "hits_memory") + admin_value(port, "hits_redis"), admin_value(port, "misses")
                        t = pgbench(port, scripts[workload], mode, a.clients, a.seconds)
                        tps.setdefault((workload, mode, name), []).append(t)
                        if cached:
                            hits = admin_value(port, "hits_memory") + admin_value(port, "hits_redis") - hits0
                            misses = admin_value(port, "misses") - miss0
                            ratio.setdefault((workload, mode, name), []).append(hits / max(1, hits + misses))
                        print(f"round {r + 1} {workload:<5} -M {mode:<8} {name:<20} {t:>10.0f} tps", flush=True)
            for name, port in targets:  # one client, per-transaction latency
                pgbench(port, scripts["point"], "prepared", 1, a.seconds, log_dir=tmp)
                p50.setdefault(name, []).append(p50_from_logs(tmp))
            p50.setdefault("bare Redis GET", []).append(redis_get_p50(redis_port, a.seconds))
        lines = [f"pgbench -c {a.clients}, scale {a.scale} ({a.scale * 100000} rows), point reads over {a.keys} keys, "
                 f"{a.seconds} s per run, {a.rounds} rounds interleaved; median TPS (ratio to direct), hit ratio of the "
                 "measured runs.", "",
                 "| workload | mode | direct | proxy, memory tier | proxy, Redis tier |", "|---|---|---|---|---|"]
        for workload in ("count", "point"):
            for mode in ("simple", "prepared"):
                d = statistics.median(tps[(workload, mode, "direct")])
                cells = [f"{d:.0f}"]
                for name in ("proxy, memory tier", "proxy, Redis tier"):
                    m = statistics.median(tps[(workload, mode, name)])
                    h = statistics.median(ratio[(workload, mode, name)])
                    cells.append(f"{m:.0f} ({m / d:.1f}×, hits {h:.1%})")
                lines.append(f"| {workload} | {mode} | " + " | ".join(cells) + " |")
        lines += ["", "One client, `-M prepared` point read, median per-transaction latency (µs), and a bare Redis GET "
                  "(redis-benchmark -c 1) on the same machine:", "",
                  "| direct | proxy, memory tier | proxy, Redis tier | bare Redis GET |", "|---|---|---|---|",
                  "| " + " | ".join(f"{statistics.median(p50[n]):.0f}" for n in
                                   ("direct", "proxy, memory tier", "proxy, Redis tier", "bare Redis GET")) + " |"]
        write_table(lines, a.out)
    finally:
        stop_all(procs, data, tmp)


if __name__ == "__main__":
    main()
