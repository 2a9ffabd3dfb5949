#!/usr/bin/env python3
"""pgbench -S side by side: direct PostgreSQL vs citus-proxy vs PgBouncer, in one run.

Starts its own PostgreSQL (initdb as the `postgres` user when run as root), citus-proxy (release
build) and PgBouncer (transaction pooling for simple/extended, session pooling for prepared, which
transaction pooling cannot serve), all on free loopback ports. Runs are interleaved target by
target, repeated for ROUNDS rounds; the table reports the median TPS and its ratio to direct.

Usage: loadtest/bench/pgbench_compare.py [--seconds 10] [--rounds 3] [--clients 1,8,32]
       [--modes simple,extended,prepared] [--out docs/benchmarks-pgbench.md]
"""
import argparse, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

PG_BIN = os.environ.get("CITUS_PROXY_PG_BIN", "/usr/lib/postgresql/15/bin")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pg(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


def wait_port(port, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def start_postgres(tmp):
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(as_pg([f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]),
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    with open(os.path.join(data, "postgresql.auto.conf"), "a") as f:
        f.write(f"port={port}\nlisten_addresses='127.0.0.1'\nunix_socket_directories='{tmp}'\n"
                "max_connections=200\nshared_buffers=256MB\nfsync=off\nsynchronous_commit=off\n")
    subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", data, "-l", os.path.join(tmp, "pg.log"), "-w", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    return data, port


def start_bench_db(tmp, scale):
    """A PostgreSQL with database `bench` initialised by `pgbench -i -s SCALE`: (data dir, port)."""
    data, port = start_postgres(tmp)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"], check=True)
    subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"],
                   check=True, capture_output=True)
    return data, port


def start_pgbouncer(tmp, pg_port, mode, pool):
    port = free_port()
    ini = os.path.join(tmp, f"pgbouncer-{mode}.ini")
    users = os.path.join(tmp, "users.txt")
    with open(users, "w") as f:
        f.write('"postgres" ""\n')
    with open(ini, "w") as f:
        f.write(f"[databases]\nbench = host=127.0.0.1 port={pg_port} dbname=bench\n"
                f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
                f"auth_file = {users}\npool_mode = {mode}\ndefault_pool_size = {pool}\nmax_client_conn = 500\n"
                f"unix_socket_dir =\nlogfile = {tmp}/pgbouncer-{mode}.log\npidfile = {tmp}/pgbouncer-{mode}.pid\n")
    if os.geteuid() == 0:
        shutil.chown(ini, "postgres", "postgres")
        shutil.chown(users, "postgres", "postgres")
    proc = subprocess.Popen(as_pg(["pgbouncer", ini]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_proxy(pg_port, routing=True, extra=()):
    exe = os.path.join(ROOT, "target", "release", "citus-proxy")
    port = free_port()
    proc = subprocess.Popen([exe, "--listen", f"127.0.0.1:{port}", "--upstream", f"postgres://postgres@127.0.0.1:{pg_port}/bench",
                             "--upstream-sslmode", "disable", "--log-level", "error", "--metrics-listen", "off",
                             "--routing-enabled", "true" if routing else "false", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """User + system CPU seconds of a process (and its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu():
    """Busy CPU seconds of the whole machine so far (every core, user + system + irq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


def pgbench(port, mode, clients, seconds):
    threads = min(clients, 2)
    out = subprocess.run(["pgbench", "-n", "-S", "-M", mode, "-c", str(clients), "-j", str(threads), "-T", str(seconds),
                          "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"],
                         capture_output=True, text=True)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
    if not m:
        sys.exit(f"pgbench failed on port {port}: {out.stdout}\n{out.stderr}")
    return float(m.group(1))


def write_table(lines, out):
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    if out:
        with open(out, "w") as f:
            f.write(table)


def stop_all(procs, data, tmp):
    """Stops the started processes and PostgreSQL, and removes the scratch directory."""
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    if data:
        subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", data, "stop", "-m", "fast"]), stdout=subprocess.DEVNULL)
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--modes", default="simple,extended,prepared")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    clients = [int(c) for c in a.clients.split(",")]
    modes = a.modes.split(",")
    if not os.path.exists(os.path.join(ROOT, "target", "release", "citus-proxy")):
        subprocess.run(["cargo", "build", "--release", "-p", "citus-proxy"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="citus-proxy-bench-")
    procs = []
    data = None
    try:
        data, pg_port = start_bench_db(tmp, a.scale)
        proxy, proxy_port = start_proxy(pg_port)
        procs.append(proxy)
        plain, plain_port = start_proxy(pg_port, routing=False)
        procs.append(plain)
        tx, tx_port = start_pgbouncer(tmp, pg_port, "transaction", max(clients))
        sess, sess_port = start_pgbouncer(tmp, pg_port, "session", max(clients))
        procs += [tx, sess]
        results = {}
        # CPU per transaction: the proxy's own, and the machine's (every process, the kernel).
        cpu = {}
        pids = {proxy_port: proxy.pid, plain_port: plain.pid}
        for r in range(a.rounds):
            for c in clients:
                for mode in modes:
                    bouncer = sess_port if mode == "prepared" else tx_port
                    for name, port in [("direct", pg_port), ("citus-proxy", proxy_port),
                                       ("citus-proxy routing off", plain_port), ("pgbouncer", bouncer)]:
                        before = (proc_cpu(pids[port]) if port in pids else 0.0, machine_cpu())
                        tps = pgbench(port, mode, c, a.seconds)
                        after = (proc_cpu(pids[port]) if port in pids else 0.0, machine_cpu())
                        txs = tps * a.seconds
                        cpu.setdefault((c, mode, name), []).append(
                            ((after[0] - before[0]) / txs * 1e6, (after[1] - before[1]) / txs * 1e6))
                        results.setdefault((c, mode, name), []).append(tps)
                        print(f"round {r + 1} -c {c:>2} -M {mode:<8} {name:<24} {tps:>10.0f} tps", flush=True)
        lines = [f"pgbench -S, scale {a.scale}, {a.seconds} s per run, {a.rounds} rounds interleaved, median TPS "
                 f"(ratio to direct); PgBouncer in transaction pooling (session pooling for -M prepared).", "",
                 "| clients | mode | direct | citus-proxy | citus-proxy, routing off | pgbouncer | routing cost |",
                 "|---|---|---|---|---|---|---|"]
        for c in clients:
            for mode in modes:
                d = statistics.median(results[(c, mode, "direct")])
                cells = [f"{d:.0f}"]
                for name in ("citus-proxy", "citus-proxy routing off", "pgbouncer"):
                    m = statistics.median(results[(c, mode, name)])
                    cells.append(f"{m:.0f} ({m / d:.2f})")
                on = statistics.median(results[(c, mode, "citus-proxy")])
                off = statistics.median(results[(c, mode, "citus-proxy routing off")])
                cells.append(f"{(1 - on / off) * 100:+.1f} %")
                lines.append(f"| {c} | {mode} | " + " | ".join(cells) + " |")
        lines += ["", "CPU per transaction (µs, medians; `/proc`, user + system): the proxy process's own, and the whole "
                  "machine's (pgbench, PostgreSQL, the proxy, the kernel). Routing cost in CPU = the proxy's extra CPU "
                  "with routing on, as a share of the machine's CPU per transaction with it off.", "",
                  "| clients | mode | machine, direct | proxy, routing on | proxy, routing off | machine, routing off | routing cost in CPU |",
                  "|---|---|---|---|---|---|---|"]
        for c in clients:
            for mode in modes:
                med = lambda name, i: statistics.median(x[i] for x in cpu[(c, mode, name)])
                on, off, m_off = med("citus-proxy", 0), med("citus-proxy routing off", 0), med("citus-proxy routing off", 1)
                lines.append(f"| {c} | {mode} | {med('direct', 1):.1f} | {on:.1f} | {off:.1f} | {m_off:.1f} | "
                             f"{(on - off) / m_off * 100:+.1f} % |")
        write_table(lines, a.out)
    finally:
        stop_all(procs, data, tmp)


if __name__ == "__main__":
    main()
