//! Watching and emptying the result cache: `SHOW CACHE` and `FLUSH CACHE` on the admin console,
//! the Prometheus counters, and `citus-proxy flush-cache` through a shared Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::{eventually, Proxy};
use tokio_postgres::SimpleQueryMessage;

fn value(msgs: &[SimpleQueryMessage], name: &str) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) if r.get(0) == Some(name) => r.get(1).map(str::to_string),
        _ => None,
    })
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(conn);
    c
}

const READ: &str = "SELECT username FROM users WHERE user_id = 42";

#[tokio::test]
async fn show_flush_and_metrics() {
    let proxy = Proxy::start_citus(&[("admin.users", "postgres"), ("cache.tables", "users")]).await;
    let app = connect(&proxy.citus_url()).await;
    for _ in 0..3 {
        app.simple_query(READ).await.expect("read");
    }
    let admin = connect(&proxy.url("citus_proxy")).await;
    let show = admin.simple_query("SHOW CACHE").await.expect("show cache");
    assert_eq!(value(&show, "state").as_deref(), Some("on"));
    assert_eq!(value(&show, "hits_memory").as_deref(), Some("2"));
    assert_eq!(value(&show, "misses").as_deref(), Some("1"));
    assert_eq!(value(&show, "memory_entries").as_deref(), Some("1"));
    assert_eq!(value(&show, "redis").as_deref(), Some("not configured"));

    proxy.ctx.update_computed_gauges();
    let text = proxy.ctx.metrics.render(&proxy.ctx.sessions);
    for line in [
        "citus_proxy_cache_hits_total{tier=\"memory\"} 2",
        "citus_proxy_cache_misses_total 1",
        "citus_proxy_cache_stores_total{tier=\"memory\"} 1",
        "citus_proxy_cache_entries{tier=\"memory\"} 1",
        "citus_proxy_cache_bypass_total{reason=\"not_opted_in\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }

    admin.simple_query("FLUSH CACHE").await.expect("flush");
    let show = admin.simple_query("SHOW CACHE").await.expect("show cache");
    assert_eq!(value(&show, "memory_entries").as_deref(), Some("0"));
    app.simple_query(READ).await.expect("read");
    let show = admin.simple_query("SHOW CACHE").await.expect("show cache");
    assert_eq!(value(&show, "misses").as_deref(), Some("2"), "flushed: the next read misses");
    proxy.stop().await;

    let off = Proxy::start_citus(&[("admin.users", "postgres"), ("cache.enabled", "false")]).await;
    let admin = connect(&off.url("citus_proxy")).await;
    let show = admin.simple_query("SHOW CACHE").await.expect("show cache");
    assert_eq!(value(&show, "state").as_deref(), Some("off (cache.enabled = false)"));
    let e = admin.simple_query("FLUSH CACHE").await.expect_err("nothing to flush");
    let e = test_support::describe(&e);
    assert!(e.contains("off"), "{e}");
    off.stop().await;
}

#[tokio::test]
async fn flush_cache_cli_empties_every_instance() {
    let redis = test_support::RedisServer::start();
    let url = redis.url();
    let settings = [("cache.tables", "users"), ("cache.redis_url", url.as_str()), ("cache.redis_prefix", "cli-flush")];
    let proxies = [Proxy::start_citus(&settings).await, Proxy::start_citus(&settings).await];
    for (i, p) in proxies.iter().enumerate() {
        assert!(p.ctx.cache.as_ref().expect("cache").wait_ready(std::time::Duration::from_secs(5)).await);
        let c = connect(&p.citus_url()).await;
        c.simple_query(READ).await.expect("read");
        c.simple_query(READ).await.expect("read");
        if i == 0 {
            // The fill reaches Redis off the relay path: the next instance can hit it only once stored.
            let cache = p.ctx.cache.as_ref().expect("cache");
            let stored = eventually(5, || async { cache.stats().stores_redis >= 1 }).await;
            assert!(stored, "the fill never reached Redis: {:?}", cache.stats());
        }
    }
    let hits = |p: &Proxy| p.ctx.cache.as_ref().map_or(0, |c| c.stats().hits_memory + c.stats().hits_redis);
    assert_eq!(hits(&proxies[0]) + hits(&proxies[1]), 3, "the second instance hit the first one's entry via Redis");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["flush-cache", "--cache-redis-url", &url, "--cache-redis-prefix", "cli-flush"])
        .output()
        .expect("run citus-proxy");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The first read after the flush misses and refills; the other instance may then take that
    // fresh entry from Redis, but no instance serves an old entry from its memory.
    let stats = |p: &Proxy| p.ctx.cache.as_ref().map(|c| c.stats()).expect("cache");
    let before: Vec<_> = proxies.iter().map(stats).collect();
    for p in &proxies {
        let c = connect(&p.citus_url()).await;
        c.simple_query(READ).await.expect("read");
    }
    let after: Vec<_> = proxies.iter().map(stats).collect();
    let misses = |v: &[citus_proxy_cache::CacheStats]| v.iter().map(|s| s.misses).sum::<u64>();
    assert_eq!(misses(&after), misses(&before) + 1, "{after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.hits_memory, b.hits_memory, "an old in-memory entry was served after the flush: {a:?}");
    }
    // Without Redis and without an admin console there is nothing the CLI could reach.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citus-proxy")).arg("flush-cache").output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-url"), "{}", String::from_utf8_lossy(&out.stderr));
    for p in proxies {
        p.stop().await;
    }
}
