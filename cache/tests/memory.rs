//! The in-process tier alone (no Redis, the default): byte bound, eviction, TTL, single-flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use citus_proxy_cache::*;
use common::{config, parts, read, read_through, response};

fn small_cache(max: u64) -> Cache {
    common::cache(&CacheConfig { memory_max_bytes: max, ..config(None, "memory") })
}

async fn miss_key(cache: &Cache, sql: &str) -> Key {
    match cache.lookup(&read(None), &parts(sql)).await {
        Lookup::Miss(key) => key,
        other => panic!("expected a miss for {sql}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_bound_holds_under_concurrent_load() {
    let max = 64 * 1024;
    let cache = small_cache(max);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                let sql = format!("SELECT {t}, {i}");
                let key = miss_key(&cache, &sql).await;
                let entry = Entry::new(response(&"x".repeat(900 + (i % 7) * 30)), Duration::from_secs(60));
                cache.store(&key, entry).await.expect("storable");
                let s = cache.stats();
                assert!(s.memory_bytes <= s.memory_max_bytes, "{} > {}", s.memory_bytes, s.memory_max_bytes);
                // Recently stored entries are readable.
                let _ = cache.lookup(&read(None), &parts(&sql)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let s = cache.stats();
    assert!(s.memory_bytes <= max as usize);
    assert!(s.memory_entries > 0 && s.memory_entries < 2400);
    assert_eq!(s.stores_memory, 2400);
    assert_eq!(s.evictions_memory as usize, 2400 - s.memory_entries, "every store beyond the bound evicted one");
    assert!(s.hits_memory > 0);
}

#[tokio::test]
async fn entries_expire_with_their_ttl() {
    let cache = small_cache(1 << 20);
    let key = miss_key(&cache, "SELECT 1").await;
    cache.store(&key, Entry::new(response("v"), Duration::from_millis(100))).await.expect("store");
    assert!(matches!(cache.lookup(&read(None), &parts("SELECT 1")).await, Lookup::Hit { tier: Tier::Memory, .. }));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(cache.lookup(&read(None), &parts("SELECT 1")).await, Lookup::Miss(_)));
    let s = cache.stats();
    assert_eq!((s.memory_entries, s.expirations_memory), (0, 1));
}

#[tokio::test]
async fn refused_responses_are_not_stored() {
    let cache = common::cache(&CacheConfig { max_entry_bytes: 200, ..config(None, "refused") });
    let key = miss_key(&cache, "SELECT 1").await;
    let big = Entry::new(response(&"x".repeat(500)), Duration::from_secs(60));
    assert_eq!(cache.store(&key, big).await, Err(BypassReason::TooLarge));
    let mut err = bytes::BytesMut::new();
    common::message(&mut err, b'E', b"SERROR\0\0");
    assert_eq!(cache.store(&key, Entry::new(err.freeze(), Duration::from_secs(60))).await, Err(BypassReason::ErrorResult));
    assert!(matches!(cache.lookup(&read(None), &parts("SELECT 1")).await, Lookup::Miss(_)));
    let s = cache.stats();
    assert_eq!(s.memory_entries, 0);
    assert!(s.bypass.contains(&("too_large", 1)) && s.bypass.contains(&("error_result", 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_elect_exactly_one_leader() {
    let cache = small_cache(1 << 20);
    let key = miss_key(&cache, "SELECT slow").await;
    let leaders = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (cache, leaders, barrier) = (cache.clone(), leaders.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            match cache.begin_fill(key) {
                Fill::Leader(guard) => {
                    leaders.fetch_add(1, Ordering::SeqCst);
                    // The upstream query takes a while; everyone else arrives meanwhile.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    guard.complete(Entry::new(response("once"), Duration::from_secs(60))).await.expect("store");
                    "once".to_string()
                }
                Fill::Follower(w) => common::payload(w.wait().await.expect("the leader's entry").bytes()),
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), "once");
    }
    assert_eq!(leaders.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().fills_in_flight, 0);
}

#[tokio::test]
async fn followers_go_upstream_when_the_leader_gives_up() {
    let cache = small_cache(1 << 20);
    let key = miss_key(&cache, "SELECT x").await;
    let Fill::Leader(guard) = cache.begin_fill(key) else { panic!("first is leader") };
    let Fill::Follower(a) = cache.begin_fill(key) else { panic!("second follows") };
    let Fill::Follower(b) = cache.begin_fill(key) else { panic!("third follows") };
    guard.abandon(BypassReason::TooLarge);
    assert!(a.wait().await.is_none());
    // A dropped (cancelled) leader releases its followers too.
    let Fill::Leader(guard) = cache.begin_fill(key) else { panic!("a new leader after release") };
    drop(guard);
    assert!(b.wait().await.is_none());
    // A leader that never finishes holds its followers for `fill_timeout` at most.
    let quick = common::cache(&CacheConfig { fill_timeout: Duration::from_millis(100), ..config(None, "quick") });
    let Fill::Leader(_stuck) = quick.begin_fill(key) else { panic!("leader") };
    let Fill::Follower(c) = quick.begin_fill(key) else { panic!("follower") };
    let started = std::time::Instant::now();
    assert!(c.wait().await.is_none());
    assert!(started.elapsed() >= Duration::from_millis(100) && started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn local_generations_invalidate_exactly() {
    let cache = small_cache(1 << 20);
    let (one, two, all) = (read(Some(1)), read(Some(2)), read(None));
    let p = parts("SELECT * FROM users WHERE id = $1");
    for facts in [&one, &two, &all] {
        assert_eq!(read_through(&cache, facts, &p, || "v1".into()).await, ("v1".into(), false));
        assert_eq!(read_through(&cache, facts, &p, || "v2".into()).await, ("v1".into(), true));
    }
    cache.invalidate(&WriteScope::shard(common::users(), 1)).await;
    assert_eq!(read_through(&cache, &two, &p, || "v2".into()).await, ("v1".into(), true), "other shard kept");
    assert_eq!(read_through(&cache, &one, &p, || "v2".into()).await, ("v2".into(), false), "written shard dropped");
    assert_eq!(read_through(&cache, &all, &p, || "v2".into()).await, ("v2".into(), false), "multi-shard dropped");
    cache.invalidate(&WriteScope::tables(vec![common::users()])).await;
    for facts in [&one, &two, &all] {
        assert_eq!(read_through(&cache, facts, &p, || "v3".into()).await, ("v3".into(), false));
    }
    cache.flush().await;
    assert_eq!(cache.stats().memory_entries, 0);
    assert_eq!(read_through(&cache, &one, &p, || "v4".into()).await, ("v4".into(), false));
    cache.invalidate(&WriteScope::Everything).await;
    assert_eq!(read_through(&cache, &one, &p, || "v5".into()).await, ("v5".into(), false));
}
