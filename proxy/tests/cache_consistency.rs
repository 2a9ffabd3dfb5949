//! The cache's correctness checker: many concurrent clients on two proxy instances sharing one
//! Redis mix reads and writes of versioned rows, and no read may return a version older than the
//! last write committed before the read began. Run with Redis up throughout, with Redis killed
//! and restarted empty mid-run, and with Redis rolled back mid-run to a snapshot taken earlier in
//! the run (restarted from its old RDB file, or the file reloaded in place); in every case no
//! client sees an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Proxy;
use test_support::RedisServer;

const KEYS: i64 = 8;
const READERS_PER_PROXY: usize = 6;
const WRITERS_PER_PROXY: usize = 2;

#[derive(Default)]
struct Tally {
    reads: AtomicU64,
    writes: AtomicU64,
    stale: AtomicU64,
    errors: AtomicU64,
    first_problem: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_problem.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(what);
    }
}

/// What happens to Redis during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Killed, down for a second, restarted empty.
    Restart,
    /// SAVE early, then SHUTDOWN NOSAVE and a restart that loads that old snapshot.
    RestartFromSnapshot,
    /// SAVE early, then DEBUG RELOAD NOSAVE: the old snapshot replaces the data in place.
    ReloadSnapshot,
}

async fn run_checker(name: &str, fault: Fault) {
    // One run at a time: on a small machine four concurrent runs starve each other of load.
    static ONE_AT_A_TIME: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    let _turn = ONE_AT_A_TIME.get_or_init(|| tokio::sync::Mutex::new(())).lock().await;
    let citus = test_support::citus();
    let url = if citus.is_real() { citus.url().to_string() } else { citus.private_copy(name) };
    let db = url.rsplit('/').next().unwrap_or(name).split('?').next().unwrap_or(name).to_string();
    let direct = test_support::connect(&url).await;
    direct.execute("UPDATE users SET username = '0' WHERE user_id BETWEEN 1 AND $1", &[&KEYS]).await.expect("reset the versioned rows");

    let redis = match fault {
        Fault::RestartFromSnapshot | Fault::ReloadSnapshot => RedisServer::start_persistent(),
        Fault::None | Fault::Restart => RedisServer::start(),
    };
    let prefix = format!("checker-{name}");
    let settings: Vec<(&'static str, &str)> = vec![
        ("cache.tables", "users=60s"),
        ("cache.redis_url", Box::leak(redis.url().into_boxed_str())),
        ("cache.redis_prefix", Box::leak(prefix.into_boxed_str())),
        ("cache.redis_timeout", "20ms"),
    ];
    let proxies = [Proxy::start_on(&url, &settings).await, Proxy::start_on(&url, &settings).await];
    for p in &proxies {
        assert!(p.ctx.cache.as_ref().expect("cache").wait_ready(Duration::from_secs(5)).await, "Redis never answered");
    }

    // committed[k]: the highest version of row k whose write had completed (its ReadyForQuery
    // reached the writer) — a read that starts later must see at least that.
    let committed: Arc<Vec<AtomicI64>> = Arc::new((0..=KEYS).map(|_| AtomicI64::new(0)).collect());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (pi, p) in proxies.iter().enumerate() {
        let purl = Arc::new(p.url(&db));
        for r in 0..READERS_PER_PROXY {
            let (purl, committed, tally, stop) = (Arc::clone(&purl), Arc::clone(&committed), Arc::clone(&tally), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let c = test_support::connect(&purl).await;
                let stmt = c.prepare("SELECT username FROM users WHERE user_id = $1").await.expect("prepare");
                let mut i = r as i64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let k = 1 + i % KEYS;
                    let floor = committed[k as usize].load(Ordering::SeqCst);
                    // Alternate the simple and the extended protocol.
                    let got = if i % 2 == 0 {
                        c.simple_query(&format!("SELECT username FROM users WHERE user_id = {k}")).await.map(|m| {
                            m.iter()
                                .find_map(|m| match m {
                                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                                    _ => None,
                                })
                                .unwrap_or_default()
                        })
                    } else {
                        c.query_one(&stmt, &[&k]).await.map(|r| r.get::<_, String>(0))
                    };
                    match got {
                        Ok(v) => {
                            tally.reads.fetch_add(1, Ordering::Relaxed);
                            let v: i64 = v.parse().unwrap_or(-1);
                            if v < floor {
                                tally
                                    .problem(&tally.stale, format!("proxy {pi}: row {k} read version {v} after version {floor} committed"));
                            }
                        }
                        Err(e) => tally.problem(&tally.errors, format!("proxy {pi} read: {}", test_support::describe(&e))),
                    }
                }
            }));
        }
        for wi in 0..WRITERS_PER_PROXY {
            let (purl, committed, tally, stop) = (Arc::clone(&purl), Arc::clone(&committed), Arc::clone(&tally), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let c = test_support::connect(&purl).await;
                let mut i = wi as i64 * 3;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let k = 1 + i % KEYS;
                    let sql = format!("UPDATE users SET username = (username::int + 1)::text WHERE user_id = {k} RETURNING username");
                    match c.simple_query(&sql).await {
                        Ok(m) => {
                            let v = m.iter().find_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
                                _ => None,
                            });
                            if let Some(v) = v {
                                committed[k as usize].fetch_max(v, Ordering::SeqCst);
                                tally.writes.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => tally.problem(&tally.errors, format!("proxy {pi} write: {}", test_support::describe(&e))),
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }));
        }
    }

    // Phases are counted in completed writes, not seconds, so that a busy machine (fewer
    // statements per second) still puts enough work into each; the deadline only bounds a hang.
    let deadline = Instant::now() + Duration::from_secs(120);
    let writes_done = |n: u64| {
        let tally = Arc::clone(&tally);
        async move {
            while tally.writes.load(Ordering::Relaxed) < n {
                assert!(Instant::now() < deadline, "the checker's clients stalled: fewer than {n} writes in 120 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    match fault {
        Fault::None => {}
        Fault::Restart => {
            writes_done(40).await;
            redis.stop();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            redis.start_again();
        }
        Fault::RestartFromSnapshot | Fault::ReloadSnapshot => {
            // The snapshot holds the counters and entries of the first writes; the writes after
            // it (and the entries cached under their counters) are what Redis forgets.
            writes_done(40).await;
            let redis = &redis;
            tokio::task::block_in_place(|| redis.save());
            let saved_at = tally.writes.load(Ordering::Relaxed);
            writes_done(saved_at + 60).await;
            tokio::task::block_in_place(|| {
                if fault == Fault::RestartFromSnapshot {
                    redis.restart_from_snapshot()
                } else {
                    redis.reload_snapshot()
                }
            });
        }
    }
    let faulted_at = tally.writes.load(Ordering::Relaxed);
    writes_done(faulted_at + 150).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    let hits: u64 = proxies.iter().map(|p| p.ctx.cache.as_ref().map_or(0, |c| c.stats().hits_memory + c.stats().hits_redis)).sum();
    let resets: Vec<u64> = proxies.iter().map(|p| p.ctx.cache.as_ref().map_or(0, |c| c.stats().redis_resets)).collect();
    let (reads, writes) = (tally.reads.load(Ordering::Relaxed), tally.writes.load(Ordering::Relaxed));
    let first = tally.first_problem.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(tally.errors.load(Ordering::Relaxed), 0, "client errors: first {first:?}");
    let failures: Vec<u64> = proxies.iter().map(|p| p.ctx.cache.as_ref().map_or(0, |c| c.stats().invalidation_failures)).collect();
    let stale = tally.stale.load(Ordering::Relaxed);
    eprintln!("{name}: {reads} reads, {writes} writes, {hits} cache hits, {stale} stale, resets per proxy {resets:?}");
    assert_eq!(
        stale,
        0,
        "stale reads ({reads} reads, {writes} writes, {hits} hits, invalidation failures per proxy {failures:?}, redis resets per proxy {resets:?}): first {first:?}"
    );
    assert!(writes > 50 && reads > 500, "too little load to mean anything: {reads} reads, {writes} writes");
    assert!(hits > reads / 10, "the cache was barely used ({hits} hits of {reads} reads): the checker proves nothing");
    if matches!(fault, Fault::RestartFromSnapshot | Fault::ReloadSnapshot) {
        assert!(resets.iter().any(|&n| n > 0), "no proxy noticed Redis going back in time: the run proves nothing");
    }
    for p in proxies {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_is_older_than_a_committed_write() {
    run_checker("cache_checker", Fault::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_read_and_no_error_while_redis_restarts() {
    run_checker("cache_checker_restart", Fault::Restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_read_when_redis_restarts_from_an_older_snapshot() {
    run_checker("cache_checker_rollback", Fault::RestartFromSnapshot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stale_read_when_redis_reloads_an_older_snapshot_in_place() {
    run_checker("cache_checker_reload", Fault::ReloadSnapshot).await;
}
