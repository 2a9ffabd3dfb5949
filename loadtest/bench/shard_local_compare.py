#!/usr/bin/env python3
"""Shard-local routing side by side: the coordinator directly, and citus-proxy in transaction pooling
with routing.shard_local off and on (and, on the hop model, routing.spread_reads on), in one
interleaved citus-loadtest run per client count, for the point_select, mixed and aggregation
scenarios (aggregation: the multi-shard class alone; in mixed it is 5 % of a closed loop, so its
ops/s follow the single-shard statements' speed and only its latency says something).

Each model starts the multi-node fixture (`citus-fixture`, test-support: the coordinator copy plus
two plain PostgreSQL "nodes", each holding its placements' rows; `pg_dist_node` names them):
  * `none`: the plain fixture. The coordinator holds every row and runs every statement itself, so
    there is no hop to save: shard-local routing can only show its own cost.
  * `fdw`:  `citus-fixture --hop fdw`. The coordinator's `users` is hash-partitioned over the nodes
    through postgres_fdw (the nodes hold full copies of `users`, `orders` and `events`), so a point select
    through the coordinator pays a planner pass plus a remote execution on one node, as Citus's
    router executor does; the proxy still goes straight to the Citus placement node. Here the run
    also has a `node1` target (node 1 directly, which holds every user): the hop-free path without
    a proxy.

For every round and client count it runs ONE citus-loadtest with all targets (the loadtest cuts each
target's run into alternating slices), reads report.json, and reports medians over the rounds of
throughput (ops/s), p50 and p99 per scenario and class, with the ratios proxy_on/proxy_off and
proxy_on/direct. It also reads `citus_proxy_served_total{node}` from each proxy's metrics endpoint
to show which servers ran the transactions.

Usage: loadtest/bench/shard_local_compare.py [--rounds 3] [--duration 6] [--warmup 1]
       [--clients 1,8] [--models none,fdw] [--spread auto|on|off] [--pool-size 20]
       [--no-node-target] [--out table.md] [--reports DIR]
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgbench_compare import ROOT, free_port, proc_cpu, wait_port, write_table  # noqa: E402

RELEASE = os.path.join(ROOT, "target", "release")
SCENARIOS = ["point_select", "mixed", "aggregation"]
# (scenario, class) pairs reported, in order.
ROWS = [("point_select", "single_shard_query"), ("mixed", "single_shard_query"), ("mixed", "multi_shard_aggregation"),
        ("aggregation", "multi_shard_aggregation")]


def build():
    subprocess.run(["cargo", "build", "--release", "-p", "citus-proxy", "-p", "citus-loadtest"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-p", "test-support", "--bin", "citus-fixture"], cwd=ROOT, check=True)


def start_fixture(model):
    """Starts citus-fixture; returns (process, facts). It lives until its stdin is closed."""
    args = [os.path.join(RELEASE, "citus-fixture"), "--name", "slbench", "--hop", model]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    facts = {}
    for line in proc.stdout:
        # pg_ctl's own progress lines share the stream; only KEY=value lines are facts.
        m = re.match(r"^([A-Z0-9_]+)=(.*)$", line.rstrip("\n"))
        if m:
            facts[m.group(1)] = m.group(2)
        if facts.get("READY") == "1":
            break
    if facts.get("READY") != "1":
        sys.exit(f"citus-fixture --hop {model} did not come up (exit {proc.wait()})")
    return proc, facts


def start_proxy(coordinator, database, shard_local, spread, pool_size):
    exe = os.path.join(RELEASE, "citus-proxy")
    port, mport = free_port(), free_port()
    host_port = coordinator.split("@", 1)[1].split("/", 1)[0]
    proc = subprocess.Popen([exe, "--listen", f"127.0.0.1:{port}",
                             "--upstream", f"postgres://postgres@{host_port}/{database}",
                             "--upstream-sslmode", "disable", "--log-level", "error",
                             "--metrics-listen", f"127.0.0.1:{mport}", "--routing-enabled", "true",
                             "--pool-mode", "transaction", "--pool-size", str(pool_size), "--auth-type", "trust",
                             "--routing-shard-local", "true" if shard_local else "false",
                             "--routing-spread-reads", "true" if spread else "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    wait_port(mport)
    return proc, port, mport


def served(mport):
    """citus_proxy_served_total by node label."""
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^citus_proxy_served_total\{[^}]*node="([^"]*)"[^}]*\} ([0-9.e+]+)$', text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def psql(port, database, sql):
    return subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
                           "-c", sql], capture_output=True, text=True)


def wait_shard_local(port, mport, database, node_addrs, secs=30):
    """Until the proxy has loaded the metadata and serves a point select from a node."""
    deadline = time.time() + secs
    while time.time() < deadline:
        psql(port, database, "SELECT username FROM users WHERE user_id = 42")
        if any(served(mport).get(a, 0) > 0 for a in node_addrs):
            return
        time.sleep(0.5)
    sys.exit(f"the shard-local proxy on {port} never served from a node ({served(mport)})")


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def loadtest(targets, clients, a, report_dir):
    cmd = [os.path.join(RELEASE, "citus-loadtest")]
    for name, url in targets:
        cmd += ["--target", f"{name}={url}"]
    for s in SCENARIOS:
        cmd += ["--scenario", s]
    cmd += ["--clients", str(clients), "--duration", str(a.duration), "--warmup", str(a.warmup), "--no-progress",
            "--report", report_dir]
    out = subprocess.run(cmd, capture_output=True, text=True)
    # 1 = a class missed its SLO target: still a measurement. 2 = the run could not happen.
    if out.returncode not in (0, 1):
        sys.exit(f"citus-loadtest failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    with open(os.path.join(report_dir, "report.json")) as f:
        return json.load(f)


def label(addr, facts):
    """A served-by label: `coordinator` is the proxy's upstream pool; the coordinator reached as a
    pg_dist_node primary (a spread read) is a node pool of its own."""
    for k, v in facts.items():
        if k.endswith("_ADDR") and v == addr:
            return "coordinator as node" if k == "COORDINATOR_ADDR" else k[:-5].lower()
    return addr


def run_model(model, a, reports_root, lines):
    fixture, facts = start_fixture(model)
    procs = [fixture]
    try:
        db, coord = facts["DATABASE"], facts["COORDINATOR_URL"]
        node_addrs = [v for k, v in facts.items() if re.match(r"NODE\d+_ADDR", k)]
        spread = a.spread == "on" or (a.spread == "auto" and model == "fdw")
        off, off_port, off_m = start_proxy(coord, db, False, False, a.pool_size)
        on, on_port, on_m = start_proxy(coord, db, True, False, a.pool_size)
        procs += [off, on]
        proxies = {"proxy_off": (off, off_port, off_m), "proxy_on": (on, on_port, on_m)}
        if spread:
            sp, sp_port, sp_m = start_proxy(coord, db, True, True, a.pool_size)
            procs.append(sp)
            proxies["proxy_spread"] = (sp, sp_port, sp_m)
        for name in proxies:
            if name != "proxy_off":
                wait_shard_local(proxies[name][1], proxies[name][2], db, node_addrs)
        url = lambda port: f"postgres://postgres@127.0.0.1:{port}/{db}"
        targets = [("direct", coord)] + [(n, url(p[1])) for n, p in proxies.items()]
        if model == "fdw" and not a.no_node_target:
            # Every node holds every user here: node1 straight is the hop-free path with no proxy.
            targets.append(("node1", facts["NODE1_URL"]))
        names = [n for n, _ in targets]
        res, served_runs, cpu = {}, {}, {}
        for r in range(a.rounds):
            for c in a.clients:
                before = {n: served(p[2]) for n, p in proxies.items()}
                cpu0 = {n: proc_cpu(p[0].pid) for n, p in proxies.items()}
                rep = loadtest(targets, c, a, os.path.join(reports_root, f"{model}-r{r + 1}-c{c}"))
                for n, p in proxies.items():
                    served_runs.setdefault((c, n), []).append(delta(served(p[2]), before[n]))
                    cpu.setdefault((c, n), []).append(proc_cpu(p[0].pid) - cpu0[n])
                for row in rep["results"]:
                    if row["status"] != "ran":
                        print(f"  {row['target']} {row['scenario']} {row['class']}: {row['status']} {row.get('reason')}")
                        continue
                    key = (c, row["scenario"], row["class"], row["target"])
                    res.setdefault(key, []).append((row["throughput_ops"], row["p50_us"], row["p99_us"], row["errors"]))
                point = {row["target"]: row["throughput_ops"] for row in rep["results"]
                         if row["scenario"] == "point_select" and row["status"] == "ran"}
                summary = "  ".join(f"{n} {point.get(n, 0):.0f}" for n in names)
                print(f"{model} round {r + 1} -c {c}: point_select ops/s {summary}", flush=True)
        lines += [f"### Model `{model}`" + (" (postgres_fdw hop)" if model == "fdw" else " (no hop)"), ""]
        if model == "fdw":
            trace = [facts[k] for k in sorted(facts) if k.startswith("FDW_REMOTE_STATEMENT_")]
            lines += [f"Statements one coordinator point select runs on the node (log_statement): "
                      f"{facts.get('FDW_REMOTE_STATEMENTS_PER_POINT_SELECT')}: " + "; ".join(f"`{t}`" for t in trace), ""]
        lines += [f"Median of {a.rounds} rounds; throughput in ops/s, latency p50 / p99 in ms.", "",
                  "| clients | scenario | class | " + " | ".join(names) + " | on÷off | on÷direct |" +
                  (" spread÷direct |" if spread else ""),
                  "|---" * (len(names) + 5 + (1 if spread else 0)) + "|"]
        med = lambda key, i: statistics.median(x[i] for x in res[key]) if res.get(key) else None
        for c in a.clients:
            for scen, cls in ROWS:
                tput = {n: med((c, scen, cls, n), 0) for n in names}
                cells = []
                for n in names:
                    t, p50, p99 = tput[n], med((c, scen, cls, n), 1), med((c, scen, cls, n), 2)
                    errs = sum(x[3] for x in res.get((c, scen, cls, n), []))
                    cells.append("–" if t is None else f"{t:.0f} ({p50 / 1000:.2f} / {p99 / 1000:.2f})" +
                                 (f" {errs} errors" if errs else ""))
                ratio = lambda x, y: f"{tput[x] / tput[y]:.2f}" if tput.get(x) and tput.get(y) else "–"
                row = f"| {c} | {scen} | {cls} | " + " | ".join(cells) + f" | {ratio('proxy_on', 'proxy_off')} | " \
                      f"{ratio('proxy_on', 'direct')} |"
                if spread:
                    row += f" {ratio('proxy_spread', 'direct')} |"
                lines.append(row)
        lines += ["", "Transactions each proxy's pools served, by server (`citus_proxy_served_total`, summed over "
                  "the rounds), and the proxy's CPU per served transaction:", "",
                  "| clients | proxy | served by | CPU µs/tx |", "|---|---|---|---|"]
        for c in a.clients:
            for n in proxies:
                total = {}
                for d in served_runs[(c, n)]:
                    for k, v in d.items():
                        total[k] = total.get(k, 0) + v
                txs = sum(total.values())
                shown = ", ".join(f"{label(k, facts)} {v:.0f}" for k, v in sorted(total.items()) if v)
                per = f"{sum(cpu[(c, n)]) / txs * 1e6:.1f}" if txs else "–"
                lines.append(f"| {c} | {n} | {shown} | {per} |")
        lines.append("")
    finally:
        for p in procs[1:]:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        fixture.stdin.close()
        fixture.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--models", default="none,fdw")
    ap.add_argument("--spread", choices=["auto", "on", "off"], default="auto",
                    help="a proxy with spread_reads too (auto: on the fdw model only, where nodes hold full copies)")
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--no-node-target", action="store_true",
                    help="on the fdw model, do not also run against node 1 directly (no proxy, no hop)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--reports", help="keep each run's report.json/html here")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.clients = [int(c) for c in a.clients.split(",")]
    if not a.no_build:
        build()
    reports = a.reports or tempfile.mkdtemp(prefix="citus-proxy-shard-local-")
    os.makedirs(reports, exist_ok=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    lines = [f"citus-loadtest {' + '.join(SCENARIOS)}, {a.duration:g} s (+{a.warmup:g} s warm-up) per target and scenario, "
             f"{a.rounds} rounds, targets interleaved by the loadtest; pool.size {a.pool_size}; load average at start "
             f"{' '.join(load)}.", ""]
    for model in a.models.split(","):
        run_model(model, a, reports, lines)
    write_table(lines, a.out)


if __name__ == "__main__":
    main()
