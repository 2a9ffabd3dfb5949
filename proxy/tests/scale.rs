//! Many clients at once, and a large result streamed through the real binary while its memory
//! stays flat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{backends, eventually, Proxy};
use futures_util::StreamExt;

const CLIENTS: usize = 200;
const QUERIES: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients() {
    let db = "scale_db";
    test_support::postgres().fresh_database(db);
    let proxy = Proxy::start(&[]).await;
    let url = proxy.url(db);
    let connected = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let go = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (url, connected, go) = (url.clone(), Arc::clone(&connected), Arc::clone(&go));
            tokio::spawn(async move {
                let c = test_support::connect(&url).await;
                connected.wait().await;
                go.wait().await;
                let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
                let st = c.prepare("SELECT $1::int8 * 2, $2::text || ':' || pg_backend_pid()").await.expect("prepare");
                for q in 0..QUERIES {
                    let k = (n as i64) * 1000 + q;
                    if q % 2 == 0 {
                        let r = c.query_one(&st, &[&k, &format!("c{n}")]).await.expect("extended query");
                        assert_eq!(r.get::<_, i64>(0), k * 2);
                        assert_eq!(r.get::<_, String>(1), format!("c{n}:{pid}"), "client {n} stays on its backend");
                    } else {
                        let msgs = c.simple_query(&format!("SELECT {k} + 1, repeat('r', {q})")).await.expect("simple");
                        let row = msgs
                            .iter()
                            .find_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                                _ => None,
                            })
                            .expect("row");
                        assert_eq!(row.get(0), Some((k + 1).to_string().as_str()));
                        assert_eq!(row.get(1).map(str::len), Some(q as usize));
                    }
                }
                drop(c);
                pid
            })
        })
        .collect();
    // A client whose connect failed panics in its task and never reaches the barrier.
    tokio::time::timeout(Duration::from_secs(120), connected.wait())
        .await
        .expect("every client connects (a client task panicked: see above)");
    let connect_time = started.elapsed();
    // One upstream backend per client, all at once.
    assert_eq!(backends(db).await, CLIENTS as i64, "upstream backends while {CLIENTS} clients are connected");
    go.wait().await;
    let mut pids = HashSet::new();
    for t in tasks {
        pids.insert(t.await.expect("client task"));
    }
    println!("{CLIENTS} clients connected in {connect_time:?}; all queries done in {:?}", started.elapsed());
    assert_eq!(pids.len(), CLIENTS, "every client had its own backend");
    assert!(eventually(5, || async { backends(db).await == 0 }).await, "backends not released: {} left", backends(db).await);
    proxy.stop().await;
}

/// Kills the proxy subprocess when the test ends, panicking or not.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

#[tokio::test]
async fn a_100mb_result_streams_with_flat_memory() {
    let pg = test_support::postgres();
    let port = test_support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &format!("postgres://{}@{}", pg.superuser(), pg.addr())])
        .args(["--upstream-sslmode", "disable", "--metrics-listen", "off", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start citus-proxy");
    let guard = Guard(child);
    let pid = guard.0.id();
    let url = format!("postgres://{}@127.0.0.1:{port}/postgres?sslmode=disable", pg.superuser());
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                break client;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "the proxy did not accept connections within 10 s: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    client.simple_query("SELECT 1").await.expect("warm-up query");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss = status_kb(pid, "VmRSS:");
    let idle_hwm = status_kb(pid, "VmHWM:");

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(idle_rss));
    let sampler = {
        let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kb) = s
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let started = Instant::now();
    // 1. COPY TO STDOUT, read by a deliberately slow consumer (the server is faster than the
    //    client, so a proxy that buffered instead of applying backpressure would grow).
    let mut copy =
        Box::pin(client.copy_out("COPY (SELECT repeat('x', 1000) FROM generate_series(1, 100000)) TO STDOUT").await.expect("copy out"));
    let (mut copy_bytes, mut since_pause) = (0usize, 0usize);
    while let Some(chunk) = copy.next().await {
        let chunk = chunk.expect("copy chunk");
        assert!(chunk.iter().all(|&b| b == b'x' || b == b'\n'));
        copy_bytes += chunk.len();
        since_pause += chunk.len();
        if since_pause >= 4 << 20 {
            since_pause = 0;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    assert_eq!(copy_bytes, 100_000 * 1001, "every COPY byte arrived");
    let copy_time = started.elapsed();

    // 2. The same volume as rows, consumed one by one without collecting.
    let mut rows = Box::pin(
        client
            .query_raw(
                "SELECT repeat('x', 1000) FROM generate_series(1, 100000)",
                std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
            )
            .await
            .expect("query_raw"),
    );
    let (mut n, mut total) = (0usize, 0usize);
    while let Some(row) = rows.next().await {
        let row = row.expect("row");
        let s: &str = row.get(0);
        total += s.len();
        n += 1;
    }
    assert_eq!((n, total), (100_000, 100_000_000), "every row arrived");
    let elapsed = started.elapsed();

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let hwm = status_kb(pid, "VmHWM:");
    let rss_after = status_kb(pid, "VmRSS:");
    let peak_rss = peak.load(Ordering::Relaxed);
    let growth_kb = hwm.saturating_sub(idle_rss);
    println!(
        "proxy memory (kB): idle VmRSS {idle_rss}, idle VmHWM {idle_hwm}, peak sampled VmRSS {peak_rss}, \
         VmHWM after {hwm}, VmRSS after {rss_after}; high-water growth {growth_kb} kB; \
         200 MB streamed in {elapsed:?} (COPY part {copy_time:?})"
    );
    assert!(growth_kb < 32 * 1024, "the proxy's high-water mark grew by {growth_kb} kB (limit 32 MB)");
    drop(rows);
    drop(client);
    drop(guard);
}
