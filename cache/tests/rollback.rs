//! Redis going back in time: restarted from an older snapshot, its data reloaded from one
//! without a restart, or a failover to a replica that lagged. Its counters then return to values
//! the instances already used and the entries stored back then come back; neither may be served.
//! Runs against real redis-servers (one that keeps an RDB file of its own; a master and a
//! replica behind a loopback TCP forwarder that plays the failover address).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
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

/// Two instances cache a row through three versions on the Redis at `url`; `keep` keeps the
/// state of the first version aside, and `roll_back` makes Redis go back to it. No version older
/// than the last may be served afterwards, by either instance, from either tier.
async fn never_serves_what_came_before(name: &str, url: String, keep: impl FnOnce(), roll_back: impl FnOnce()) {
    // Generous time limits: a busy test machine must not turn the hits this test expects into
    // timeouts (fail-open bypasses).
    let cfg = CacheConfig { redis_timeout: Duration::from_millis(500), ..config(Some(url), name) };
    let (a, b) = (common::cache(&cfg), common::cache(&cfg));
    ready(&a).await;
    ready(&b).await;
    let facts = read(None);
    let p = parts("SELECT * FROM users");
    let write = WriteScope::tables(vec![users()]);

    assert_eq!(read_through(&a, &facts, &p, || "v0".into()).await, ("v0".into(), false));
    keep();
    for v in ["v1", "v2"] {
        a.invalidate(&write).await;
        assert_eq!(read_through(&a, &facts, &p, || v.into()).await, (v.into(), false));
        assert_eq!(read_through(&b, &facts, &p, || "upstream".into()).await, (v.into(), true), "b gets {v} from redis");
    }
    assert_eq!(read_through(&a, &facts, &p, || "upstream".into()).await, ("v2".into(), true));

    // Redis now holds v0's counters and v0's entry; a and b hold v0…v2 in memory.
    roll_back();
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
    let server = RedisServer::start_persistent();
    never_serves_what_came_before("rollback-restart", server.url(), || server.save(), || server.restart_from_snapshot()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_of_an_older_snapshot_without_a_restart() {
    let server = RedisServer::start_persistent();
    never_serves_what_came_before("rollback-reload", server.url(), || server.save(), || server.reload_snapshot()).await;
}

/// The instances reach Redis through one address (as through Sentinel-aware TCP proxying or a
/// floating IP); the replica stops replicating after the first version (it lags from then on),
/// and the address then fails over to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_replica_that_lagged() {
    let (master, replica) = (RedisServer::start(), RedisServer::start());
    let port = master.port().to_string();
    assert_eq!(replica.command(&["REPLICAOF", "127.0.0.1", &port]), "+OK");
    let address = Forwarder::start(master.port()).await;
    let keep = || {
        // Once a marker written after the first version has reached the replica, so has the
        // first version; then the replica stops following the master.
        assert_eq!(master.command(&["SET", "marker", "1"]), "+OK");
        let deadline = Instant::now() + Duration::from_secs(10);
        while replica.command(&["GET", "marker"]) != "$1" {
            assert!(Instant::now() < deadline, "the replica never caught up");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(replica.command(&["REPLICAOF", "NO", "ONE"]), "+OK");
    };
    let url = format!("redis://127.0.0.1:{}", address.port);
    never_serves_what_came_before("rollback-failover", url, keep, || address.fail_over_to(replica.port())).await;
}

/// A loopback TCP forwarder whose target can be switched: existing connections are cut (as a
/// failover cuts them) and new ones go to the new target.
struct Forwarder {
    port: u16,
    target: Arc<AtomicU16>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Forwarder {
    async fn start(target: u16) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the forwarder");
        let port = listener.local_addr().expect("forwarder address").port();
        let target = Arc::new(AtomicU16::new(target));
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (t, g) = (Arc::clone(&target), Arc::clone(&generation));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let to = t.load(Ordering::SeqCst);
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Forwarder { port, target, generation }
    }

    fn fail_over_to(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
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
