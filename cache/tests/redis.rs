//! The Redis tier against a real redis-server: roundtrip between instances, failing open when
//! Redis is down or slow (with the breaker), and recovery after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::time::{Duration, Instant};

use citus_proxy_cache::*;
use common::{config, parts, read, read_through, response};
use test_support::RedisServer;

async fn ready(cache: &Cache) {
    assert!(cache.wait_ready(Duration::from_secs(10)).await, "redis did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_travel_between_instances_through_redis() {
    let cfg = config(Some(test_support::redis().url()), "roundtrip");
    let (a, b) = (common::cache(&cfg), common::cache(&cfg));
    ready(&a).await;
    ready(&b).await;
    let p = parts("SELECT * FROM users");
    let facts = read(None);
    let Lookup::Miss(key) = a.lookup(&facts, &p).await else { panic!("miss first") };
    let bytes = response("from-a");
    a.store(&key, Entry::new(bytes.clone(), Duration::from_secs(60))).await.expect("store");
    match b.lookup(&facts, &p).await {
        Lookup::Hit { entry, tier } => {
            assert_eq!(tier, Tier::Redis);
            assert_eq!(entry.bytes(), &bytes, "exactly the bytes stored");
            assert!(entry.remaining() <= Duration::from_secs(60) && entry.remaining() > Duration::from_secs(50));
        }
        other => panic!("expected a redis hit, got {other:?}"),
    }
    // Promoted into b's memory tier.
    assert!(matches!(b.lookup(&facts, &p).await, Lookup::Hit { tier: Tier::Memory, .. }));
    let s = b.stats();
    assert_eq!((s.hits_redis, s.hits_memory, s.stores_memory), (1, 1, 1));
    assert_eq!(a.stats().stores_redis, 1);
    // Another role's key is different: b's role never gets a's rows.
    let bob = KeyParts::builder(&common::session("bob")).statement("SELECT * FROM users").protocol(Protocol::Simple).finish();
    assert!(matches!(b.lookup(&facts, &bob).await, Lookup::Miss(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_fast_opens_the_breaker_and_recovers() {
    let server = RedisServer::start();
    let cfg = CacheConfig { breaker_cooldown: Duration::from_millis(500), ..config(Some(server.url()), "down") };
    let cache = common::cache(&cfg);
    ready(&cache).await;
    let facts = read(None);
    let p = parts("SELECT 1 FROM users");
    assert_eq!(read_through(&cache, &facts, &p, || "v1".into()).await, ("v1".into(), false));
    assert_eq!(read_through(&cache, &facts, &p, || "v2".into()).await, ("v1".into(), true));

    server.stop();
    for i in 0..20 {
        let started = Instant::now();
        let out = cache.lookup(&facts, &p).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(50), "lookup {i} took {took:?}");
        assert_eq!(out, Lookup::Bypass(BypassReason::Unavailable), "nothing served while generations cannot be checked");
    }
    assert_eq!(cache.stats().redis_breaker, Some("open"));
    // Open breaker: no network at all, so 100 lookups cost less than three timeouts.
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(cache.lookup(&facts, &p).await, Lookup::Bypass(BypassReason::Unavailable));
    }
    assert!(started.elapsed() < Duration::from_millis(50), "100 lookups took {:?}", started.elapsed());
    // A write while Redis is down is kept and published once Redis is back.
    cache.invalidate(&WriteScope::tables(vec![common::users()])).await;
    assert_eq!(cache.stats().pending_invalidations, 2);

    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.lookup(&facts, &p).await {
            // Redis restarted empty: new epoch, so a miss, then normal service.
            Lookup::Miss(_) => break,
            Lookup::Bypass(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("no recovery: {other:?}"),
        }
    }
    assert_eq!(cache.stats().redis_breaker, Some("closed"));
    assert_eq!(cache.stats().pending_invalidations, 0);
    assert_eq!(read_through(&cache, &facts, &p, || "v3".into()).await, ("v3".into(), false));
    assert_eq!(read_through(&cache, &facts, &p, || "v4".into()).await, ("v3".into(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_times_out_and_fails_open() {
    let server = RedisServer::start();
    let cfg = CacheConfig { redis_timeout: Duration::from_millis(10), ..config(Some(server.url()), "slow") };
    let cache = common::cache(&cfg);
    ready(&cache).await;
    let facts = read(None);
    let p = parts("SELECT 2 FROM users");
    assert_eq!(read_through(&cache, &facts, &p, || "v1".into()).await, ("v1".into(), false));

    // Every client of the server stalls for 1.5s (a real slow Redis, not a mock).
    let admin = redis::Client::open(server.url()).expect("client");
    let mut admin = admin.get_multiplexed_async_connection().await.expect("admin connection");
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(1500).arg("ALL").query_async(&mut admin).await.expect("pause");
    for i in 0..10 {
        let started = Instant::now();
        let (value, cached) = read_through(&cache, &facts, &p, || "upstream".into()).await;
        assert!(started.elapsed() < Duration::from_millis(50), "read {i} took {:?}", started.elapsed());
        assert_eq!((value.as_str(), cached), ("upstream", false));
    }
    assert_eq!(cache.stats().redis_breaker, Some("open"));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while read_through(&cache, &facts, &p, || "v1".into()).await != ("v1".into(), true) {
        assert!(Instant::now() < deadline, "did not recover after the pause");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_start_is_not_an_error() {
    let port = test_support::free_port();
    let cfg = config(Some(format!("redis://127.0.0.1:{port}")), "never");
    let cache = common::cache(&cfg);
    let facts = read(None);
    let p = parts("SELECT 3 FROM users");
    for _ in 0..10 {
        let started = Instant::now();
        assert!(matches!(cache.lookup(&facts, &p).await, Lookup::Bypass(BypassReason::Unavailable)));
        assert!(started.elapsed() < Duration::from_millis(50));
    }
    cache.invalidate(&WriteScope::tables(vec![common::users()])).await;
    cache.flush().await;
}
