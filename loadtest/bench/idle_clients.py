#!/usr/bin/env python3
"""Memory of many pooled clients: N clients log in through citus-proxy (pool.mode = transaction,
pool.size 20) and each runs one statement, then all stay connected; the proxy's resident memory
(VmRSS) is read before and after, and the difference per client is reported.

Usage: loadtest/bench/idle_clients.py [--clients 10000] [--pool-size 20]
"""
import argparse, os, resource, socket, struct, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgbench_compare import ROOT, start_bench_db, start_proxy, stop_all  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def startup(user, db):
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def read_until_ready(s):
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed: " + repr(buf[:200]))
        buf += chunk
        # Walk whole messages; stop at ReadyForQuery.
        pos = 0
        while len(buf) - pos >= 5:
            tag = buf[pos:pos + 1]
            (n,) = struct.unpack("!i", buf[pos + 1:pos + 5])
            if len(buf) - pos < n + 1:
                break
            if tag == b"E":
                raise RuntimeError("error: " + repr(buf[pos:pos + n + 1]))
            pos += n + 1
            if tag == b"Z":
                return


def query(sql):
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(body) + 4) + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--routing-off", action="store_true", help="without routing (and the result cache)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.clients + 100:
        sys.exit(f"the open-files limit ({hard}) is below {a.clients} clients: raise it (ulimit -Hn)")
    tmp = tempfile.mkdtemp(prefix="citus-proxy-idle-")
    procs, data = [], None
    try:
        data, pg_port = start_bench_db(tmp, 1)
        proxy, port = start_proxy(pg_port, routing=not a.routing_off, extra=["--pool-mode", "transaction", "--pool-size", str(a.pool_size), "--auth-type",
                                                   "trust", "--limits-max-client-connections", str(a.clients + 100),
                                                   "--limits-max-logins-in-progress", "1000"])
        procs.append(proxy)
        time.sleep(0.5)
        before = rss_kib(proxy.pid)
        socks = []
        started = time.time()
        for i in range(a.clients):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(startup("postgres", "bench"))
            read_until_ready(s)
            s.sendall(query("SELECT 1"))
            read_until_ready(s)
            socks.append(s)
        took = time.time() - started
        time.sleep(1)
        after = rss_kib(proxy.pid)
        per = (after - before) * 1024 / a.clients
        print(f"{a.clients} clients logged in and ran a statement in {took:.1f} s over pool.size {a.pool_size}")
        print(f"proxy RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after: {per / 1024:.1f} KiB per client")
        for s in socks:
            s.close()
    finally:
        stop_all(procs, data, tmp)


if __name__ == "__main__":
    main()
