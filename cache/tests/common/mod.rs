//! Helpers shared by the cache's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use citus_proxy_cache::*;

/// A well-formed response: one DataRow carrying `payload`, then CommandComplete.
pub fn response(payload: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(b'D');
    b.put_u32((4 + 2 + 4 + payload.len()) as u32);
    b.put_u16(1);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload.as_bytes());
    message(&mut b, b'C', b"SELECT 1\0");
    b.freeze()
}

pub fn message(b: &mut BytesMut, tag: u8, body: &[u8]) {
    b.put_u8(tag);
    b.put_u32((4 + body.len()) as u32);
    b.put_slice(body);
}

/// The payload of a `response`.
pub fn payload(bytes: &[u8]) -> String {
    let len = u32::from_be_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
    String::from_utf8_lossy(&bytes[11..11 + len]).into_owned()
}

pub fn users() -> TableId {
    TableId::new("public", "users")
}

pub fn session(role: &str) -> SessionView {
    SessionView { database: "app".into(), role: role.into(), ..Default::default() }
}

/// A cacheable read of `users`, on one shard or (None) all of them.
pub fn read(shard: Option<u64>) -> StatementFacts {
    StatementFacts {
        read_only: true,
        tables: vec![users()],
        shard_scope: match shard {
            Some(shard_id) => ShardScope::Shards(vec![ShardRef { table: users(), shard_id }]),
            None => ShardScope::All,
        },
        ..Default::default()
    }
}

pub fn parts(sql: &str) -> KeyParts {
    KeyParts::builder(&session("alice")).statement(sql).protocol(Protocol::Simple).finish()
}

/// A unique Redis prefix, so tests sharing one server never see each other's keys.
pub fn prefix(test: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test-{test}-{}-{n}", std::process::id())
}

pub fn config(redis_url: Option<String>, test: &str) -> CacheConfig {
    CacheConfig {
        redis_url,
        redis_prefix: prefix(test),
        redis_timeout: Duration::from_millis(20),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_millis(200),
        rules: vec![Rule { table: Some("users".into()), shape: None, ttl: Some(Duration::from_secs(60)) }],
        ..Default::default()
    }
}

pub fn cache(config: &CacheConfig) -> Cache {
    let policy = Policy::new(config, |_| None).expect("policy");
    Cache::new(config, policy).expect("cache")
}

/// Looks up; on a miss fills with `fill()` as the upstream answer. Returns the payload served
/// and whether it came from the cache.
pub async fn read_through(cache: &Cache, facts: &StatementFacts, parts: &KeyParts, fill: impl FnOnce() -> String) -> (String, bool) {
    match cache.lookup(facts, parts).await {
        Lookup::Hit { entry, .. } => (payload(entry.bytes()), true),
        Lookup::Bypass(_) => (fill(), false),
        Lookup::Miss(key) => match cache.begin_fill(key) {
            Fill::Leader(guard) => {
                let value = fill();
                let _ = guard.complete(Entry::new(response(&value), Duration::from_secs(60))).await;
                (value, false)
            }
            Fill::Follower(waiter) => match waiter.wait().await {
                Some(entry) => (payload(entry.bytes()), true),
                None => (fill(), false),
            },
        },
    }
}
