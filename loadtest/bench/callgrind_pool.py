#!/usr/bin/env python3
"""Instructions per transaction of the intermediary alone (valgrind --tool=callgrind): citus-proxy
in transaction pooling (one worker thread, routing on and off) and PgBouncer in transaction
pooling, under `pgbench -S -c 1 -t N` for two values of N; the difference in the process's total
instructions, divided by the difference in N, is the cost of one transaction (start-up and
shutdown cancel out).

Usage: loadtest/bench/callgrind_pool.py [--modes simple,extended,prepared] [--short 500] [--long 1500]
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgbench_compare import ROOT, as_pg, free_port, start_bench_db, stop_all, wait_port  # noqa: E402


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    sys.exit(f"no totals in {path}")


def run(target, tmp, pg_port, mode, n):
    out = os.path.join(tmp, f"cg-{target}-{mode}-{n}.out")
    port = free_port()
    if target.startswith("citus-proxy"):
        routing = "true" if target == "citus-proxy" else "false"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               os.path.join(ROOT, "target", "release", "citus-proxy"), "--listen", f"127.0.0.1:{port}",
               "--upstream", f"postgres://postgres@127.0.0.1:{pg_port}/bench", "--upstream-sslmode", "disable",
               "--log-level", "error", "--metrics-listen", "off", "--routing-enabled", routing,
               "--runtime-worker-threads", "1", "--pool-mode", "transaction", "--auth-type", "trust"]
    else:
        ini = os.path.join(tmp, f"pgb-{mode}-{n}.ini")
        users = os.path.join(tmp, "users.txt")
        with open(users, "w") as f:
            f.write('"postgres" ""\n')
        with open(ini, "w") as f:
            f.write(f"[databases]\nbench = host=127.0.0.1 port={pg_port} dbname=bench\n[pgbouncer]\n"
                    f"listen_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\nauth_file = {users}\n"
                    f"pool_mode = transaction\ndefault_pool_size = 4\nunix_socket_dir =\n")
        os.chmod(tmp, 0o777)
        for p in (ini, users):
            os.chmod(p, 0o644)
        cmd = as_pg(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "pgbouncer", ini])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 120)
    r = subprocess.run(["pgbench", "-n", "-S", "-M", mode, "-c", "1", "-t", str(n), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", "bench"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"pgbench failed against {target}: {r.stderr.strip()[:200]}")
    # callgrind writes its totals when the process exits.
    subprocess.run(["pkill", "-INT", "-f", f"callgrind-out-file={out}"])
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    time.sleep(0.5)
    return totals(out) if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="simple,extended,prepared")
    ap.add_argument("--short", type=int, default=500)
    ap.add_argument("--long", type=int, default=1500)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="citus-proxy-callgrind-")
    data = None
    try:
        data, pg_port = start_bench_db(tmp, 1)
        rows = []
        for mode in a.modes.split(","):
            cells = []
            for target in ("citus-proxy", "citus-proxy routing off", "pgbouncer"):
                lo, hi = run(target, tmp, pg_port, mode, a.short), run(target, tmp, pg_port, mode, a.long)
                per = (hi - lo) / (a.long - a.short) if lo and hi else None
                cells.append(f"{per / 1000:.1f} k" if per else "fails")
                print(f"{mode:<9} {target:<24} {cells[-1]}", flush=True)
            rows.append(f"| {mode} | " + " | ".join(cells) + " |")
        print("\n| mode | citus-proxy transaction | routing off | pgbouncer transaction |\n|---|---|---|---|")
        print("\n".join(rows))
    finally:
        stop_all([], data, tmp)


if __name__ == "__main__":
    main()
