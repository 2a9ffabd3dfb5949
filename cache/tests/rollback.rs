//! Redis going back in time: restarted from an older snapshot, or its data reloaded from one
//! without a restart. Its counters then return to values the instances already used and the
//! entries stored back then come back; neither may be served. Runs against a real redis-server
//! that keeps an RDB file of its own.

mod common;

use std::time::{Duration, Instant};

use citus_proxy_cache::*;
use common::{config, parts, read, read_through, users};
use test_support::RedisServer;

async fn ready(cache: &Cache) {
    assert!(cache.wait_ready(Duration::from_secs(10)).await, "redis did not become ready");
}

/// The first lookup that Redis answers (a restart leaves the connection down for a moment).
async fn first_answer(cache: &Cache, facts: &StatementFacts, p: &KeyParts) -> Lookup {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.lookup(facts, p).await {
            Lookup::Bypass(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return other,
        }
    }
}

/// Two instances cache a row through three versions; Redis is snapshotted at the first and then
/// rolled back to it by `roll_back`. No version older than the last may be served afterwards,
/// by either instance, from either tier.
async fn never_serves_what_came_before(name: &str, roll_back: impl FnOnce(&RedisServer)) {
    let server = RedisServer::start_persistent();
    // Generous time limits: a busy test machine must not turn the hits this test expects into
    // timeouts (fail-open bypasses).
    let cfg = CacheConfig { redis_timeout: Duration::from_millis(500), ..config(Some(server.url()), name) };
    let (a, b) = (common::cache(&cfg), common::cache(&cfg));
    ready(&a).await;
    ready(&b).await;
    let facts = read(None);
    let p = parts("SELECT * FROM users");
    let write = WriteScope::tables(vec![users()]);

    assert_eq!(read_through(&a, &facts, &p, || "v0".into()).await, ("v0".into(), false));
    server.save();
    for v in ["v1", "v2"] {
        a.invalidate(&write).await;
        assert_eq!(read_through(&a, &facts, &p, || v.into()).await, (v.into(), false));
        assert_eq!(read_through(&b, &facts, &p, || "upstream".into()).await, (v.into(), true), "b gets {v} from redis");
    }
    assert_eq!(read_through(&a, &facts, &p, || "upstream".into()).await, ("v2".into(), true));

    // Redis now holds v0's counters and v0's entry; a and b hold v0…v2 in memory.
    roll_back(&server);
    match first_answer(&a, &facts, &p).await {
        Lookup::Miss(_) => {}
        Lookup::Hit { entry, tier } => panic!("a served {} from {tier:?} after the rollback", common::payload(entry.bytes())),
        other => panic!("a: {other:?}"),
    }
    assert!(a.stats().redis_resets >= 1, "a did not notice the rollback: {:?}", a.stats());
    // Writes after the rollback walk the counters through values used before it (v1's, v2's).
    for v in ["v3", "v4"] {
        a.invalidate(&write).await;
        for (who, cache) in [("a", &a), ("b", &b)] {
            let (got, _) = read_through(cache, &facts, &p, || v.into()).await;
            assert_eq!(got, v, "{who} served an older version after the rollback");
        }
    }
    // Normal service again: a hit of the current version.
    assert_eq!(read_through(&b, &facts, &p, || "upstream".into()).await, ("v4".into(), true));
    assert_eq!(read_through(&a, &facts, &p, || "upstream".into()).await, ("v4".into(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_an_older_snapshot() {
    never_serves_what_came_before("rollback-restart", RedisServer::restart_from_snapshot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_of_an_older_snapshot_without_a_restart() {
    never_serves_what_came_before("rollback-reload", RedisServer::reload_snapshot).await;
}

/// Redis losing the hash while an instance runs (a restart without persistence, the hash
/// evicted) is a rollback to nothing: the same reset, and the instance's memory is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_generations_resets_too() {
    let server = RedisServer::start();
    let cfg = CacheConfig { redis_timeout: Duration::from_millis(500), ..config(Some(server.url()), "rollback-lost") };
    let a = common::cache(&cfg);
    ready(&a).await;
    let facts = read(None);
    let p = parts("SELECT 1 FROM users");
    assert_eq!(read_through(&a, &facts, &p, || "v0".into()).await, ("v0".into(), false));
    assert_eq!(server.command(&["FLUSHALL"]), "+OK");
    assert!(matches!(first_answer(&a, &facts, &p).await, Lookup::Miss(_)));
    assert_eq!(a.stats().redis_resets, 1);
    assert_eq!(a.stats().memory_entries, 0, "the in-process tier is dropped");
    assert_eq!(read_through(&a, &facts, &p, || "v1".into()).await, ("v1".into(), false));
    assert_eq!(read_through(&a, &facts, &p, || "v2".into()).await, ("v1".into(), true));
}
