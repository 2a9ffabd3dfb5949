//! Generations shared through Redis by several instances: shard-precise and table-wide
//! invalidation, flush broadcast, and read-your-writes under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citus_proxy_cache::*;
use common::{config, parts, read, read_through, users};

async fn pair(test: &str) -> (Cache, Cache) {
    let cfg = config(Some(test_support::redis().url()), test);
    let (a, b) = (common::cache(&cfg), common::cache(&cfg));
    assert!(a.wait_ready(Duration::from_secs(10)).await && b.wait_ready(Duration::from_secs(10)).await);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_precise_write_keeps_other_shards() {
    let (a, b) = pair("shard").await;
    let (one, two, all) = (read(Some(1)), read(Some(2)), read(None));
    let p = parts("SELECT * FROM users WHERE id = $1");
    for facts in [&one, &two, &all] {
        assert_eq!(read_through(&b, facts, &p, || "old".into()).await, ("old".into(), false));
        assert_eq!(read_through(&b, facts, &p, || "new".into()).await, ("old".into(), true));
    }
    // A write to user 42 (shard 1) through instance A.
    a.invalidate(&WriteScope::shard(users(), 1)).await;
    assert_eq!(read_through(&b, &two, &p, || "new".into()).await, ("old".into(), true), "shard 2 kept");
    assert_eq!(read_through(&b, &one, &p, || "new".into()).await, ("new".into(), false), "shard 1 dropped");
    assert_eq!(read_through(&b, &all, &p, || "new".into()).await, ("new".into(), false), "multi-shard dropped");
    // A table-wide write drops everything of the table.
    a.invalidate(&WriteScope::tables(vec![users()])).await;
    for facts in [&one, &two, &all] {
        assert_eq!(read_through(&b, facts, &p, || "newer".into()).await, ("newer".into(), false));
    }
    // Other tables are untouched.
    let items = StatementFacts { tables: vec![TableId::new("public", "users2")], ..read(None) };
    assert_eq!(read_through(&b, &items, &p, || "i".into()).await, ("i".into(), false));
    a.invalidate(&WriteScope::tables(vec![users()])).await;
    assert_eq!(read_through(&b, &items, &p, || "j".into()).await, ("i".into(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_reaches_every_instance() {
    let (a, b) = pair("flush").await;
    let p = parts("SELECT 1 FROM users");
    assert_eq!(read_through(&b, &read(None), &p, || "old".into()).await, ("old".into(), false));
    assert_eq!(b.stats().memory_entries, 1);
    a.flush().await;
    // Served nothing stale at once (the epoch is checked in Redis)…
    assert_eq!(read_through(&b, &read(None), &p, || "new".into()).await, ("new".into(), false));
    // …and the broadcast empties b's memory soon after.
    b.flush().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let p2 = parts("SELECT 2 FROM users");
    assert_eq!(read_through(&b, &read(None), &p2, || "x".into()).await, ("x".into(), false));
    a.flush().await;
    while b.stats().memory_entries > 0 {
        assert!(Instant::now() < deadline, "flush was not broadcast");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The coordinator is an atomic version number; a write stores the next version, invalidates
/// through one instance and then "acks" (relays ReadyForQuery). Every read that starts after an
/// ack, on any instance, must see at least that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_your_writes_across_instances() {
    let (a, b) = pair("ryw").await;
    let data = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let served_from_cache = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..8 {
        let cache = if r % 2 == 0 { a.clone() } else { b.clone() };
        let (data, acked, done, cached) = (data.clone(), acked.clone(), done.clone(), served_from_cache.clone());
        readers.push(tokio::spawn(async move {
            let p = parts("SELECT * FROM users WHERE id = 42");
            let facts = if r % 4 < 2 { read(Some(1)) } else { read(None) };
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) {
                let floor = acked.load(Ordering::SeqCst);
                let (value, hit) = read_through(&cache, &facts, &p, || data.load(Ordering::SeqCst).to_string()).await;
                let seen: u64 = value.parse().expect("a version");
                assert!(seen >= floor, "reader {r} got version {seen} after version {floor} was acknowledged");
                reads += 1;
                if hit {
                    cached.fetch_add(1, Ordering::Relaxed);
                }
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    for v in 1..=300u64 {
        let writer = if v % 2 == 0 { &a } else { &b };
        data.store(v, Ordering::SeqCst);
        let scope = if v % 3 == 0 { WriteScope::tables(vec![users()]) } else { WriteScope::shard(users(), 1) };
        writer.invalidate(&scope).await;
        acked.store(v, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(if v % 10 == 0 { 5 } else { 0 })).await;
    }
    done.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader");
    }
    let hits = served_from_cache.load(Ordering::Relaxed);
    assert!(reads > 300, "readers ran ({reads} reads)");
    assert!(hits > 0, "some reads were served from the cache ({hits} of {reads})");
    assert_eq!(a.stats().invalidation_failures + b.stats().invalidation_failures, 0);
    eprintln!("read_your_writes: {reads} reads, {hits} from cache");
}
