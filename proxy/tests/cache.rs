//! The result cache in the running proxy, against the Citus coordinator of this test binary (the
//! catalog fixture, or a real coordinator named by CITUS_PROXY_TEST_CITUS): what is served from
//! the cache and how (byte for byte, simple and extended protocol, text and binary), what is
//! never cached, how writes through the proxy invalidate (shard-precisely where the router
//! proves one shard), that roles never see each other's rows, and single-flight on misses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::Arc;

use common::{fe, hits, proxy_for, stats, Proxy, RawMsg};
use tokio::io::AsyncWriteExt;

fn bypassed(p: &Proxy, reason: &str) -> u64 {
    stats(p).bypass.iter().find(|(r, _)| *r == reason).map_or(0, |(_, n)| *n)
}

async fn one_text(c: &tokio_postgres::Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    msgs.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// Every message up to and including the next ReadyForQuery; an error in it fails the test.
async fn read_until_ready(s: &mut tokio::net::TcpStream) -> Vec<RawMsg> {
    let msgs = common::read_until_ready(s, 1).await;
    if let Some((_, body)) = msgs.iter().find(|m| m.0 == b'E') {
        panic!("unexpected error: {}", String::from_utf8_lossy(body));
    }
    msgs
}

async fn exchange(s: &mut tokio::net::TcpStream, bytes: &[u8]) -> Vec<RawMsg> {
    s.write_all(bytes).await.expect("send");
    read_until_ready(s).await
}

#[tokio::test]
async fn opted_in_reads_are_answered_byte_for_byte_and_writes_invalidate() {
    let (proxy, direct, db) = proxy_for("cache_simple", &[("cache.tables", "users")]).await;
    let mut s = common::raw_session_on(proxy.addr, &db).await;
    let q = fe::query("SELECT username, email FROM users WHERE user_id = 42");
    let first = exchange(&mut s, &q).await;
    assert_eq!(stats(&proxy).misses, 1, "{:?}", stats(&proxy));
    let second = exchange(&mut s, &q).await;
    assert_eq!(hits(&proxy), 1, "{:?}", stats(&proxy));
    assert_eq!(first, second, "a hit replays exactly the coordinator's bytes, then ReadyForQuery");

    // A write that bypasses the proxy is not seen: the entry lives until its TTL.
    let d = test_support::connect(&direct).await;
    d.execute("UPDATE users SET username = 'behind-the-back' WHERE user_id = 42", &[]).await.expect("direct write");
    let third = exchange(&mut s, &q).await;
    assert_eq!(third, first, "served from the cache, not the coordinator");

    // A write through the proxy invalidates before its ReadyForQuery reaches the client.
    let c = test_support::connect(&proxy.url(&db)).await;
    c.execute("UPDATE users SET username = 'through-the-proxy' WHERE user_id = 42", &[]).await.expect("write");
    let fourth = exchange(&mut s, &q).await;
    let text = String::from_utf8_lossy(&fourth.iter().find(|m| m.0 == b'D').expect("a row").1).into_owned();
    assert!(text.contains("through-the-proxy"), "{text}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_single_shard_write_keeps_other_shards_cached() {
    let (proxy, _, db) = proxy_for("cache_shards", &[("cache.tables", "users")]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    let read = |id: i64| format!("SELECT username FROM users WHERE user_id = {id}");
    // 42 and 7 are on different shards (routing-examples.tsv); a count reads every shard.
    for sql in [read(42), read(7), "SELECT count(*) FROM users".to_string()] {
        one_text(&c, &sql).await;
        one_text(&c, &sql).await;
    }
    assert_eq!(hits(&proxy), 3, "{:?}", stats(&proxy));
    c.execute("UPDATE users SET username = 'u42' WHERE user_id = 42", &[]).await.expect("write");
    assert_eq!(one_text(&c, &read(42)).await, "u42", "the written shard misses");
    assert_eq!(hits(&proxy), 3);
    one_text(&c, &read(7)).await;
    assert_eq!(hits(&proxy), 4, "another shard still hits");
    one_text(&c, "SELECT count(*) FROM users").await;
    assert_eq!(hits(&proxy), 4, "a multi-shard read of the table misses");

    // A table-wide write (no key) makes every shard's reads miss.
    c.execute("UPDATE users SET email = email WHERE username = 'nobody'", &[]).await.expect("write");
    one_text(&c, &read(7)).await;
    assert_eq!(hits(&proxy), 4);
    // Inside a transaction the invalidation waits for COMMIT, and nothing is cached meanwhile.
    one_text(&c, &read(7)).await;
    assert_eq!(hits(&proxy), 5, "{:?}", stats(&proxy));
    c.batch_execute("BEGIN; UPDATE users SET username = 'in-tx' WHERE user_id = 7").await.expect("tx");
    assert_eq!(one_text(&c, &read(7)).await, "in-tx", "the transaction sees its own write");
    c.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(one_text(&c, &read(7)).await, "in-tx", "after COMMIT the old entry is gone");
    assert_eq!(hits(&proxy), 5, "{:?}", stats(&proxy));
    proxy.stop().await;
}

#[tokio::test]
async fn extended_protocol_hits_in_text_and_binary() {
    let (proxy, _, db) = proxy_for("cache_extended", &[("cache.tables", "users,events")]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    // tokio-postgres: a named statement, binary results.
    let stmt = c.prepare("SELECT username, user_id FROM users WHERE user_id = $1").await.expect("prepare");
    for _ in 0..3 {
        let row = c.query_one(&stmt, &[&42i64]).await.expect("query");
        assert_eq!(row.get::<_, i64>(1), 42);
    }
    let row = c.query_one(&stmt, &[&43i64]).await.expect("other parameter");
    assert_eq!(row.get::<_, i64>(1), 43, "parameters are part of the key");
    assert_eq!(hits(&proxy), 2, "{:?}", stats(&proxy));

    // libpq-style unnamed Parse/Bind/Describe/Execute/Sync, text results.
    let mut s = common::raw_session_on(proxy.addr, &db).await;
    let batch = [
        fe::parse("", "SELECT count(*) FROM events WHERE user_id = $1", &[20]),
        fe::bind("", "", &[Some("5")]),
        fe::describe(b'P', ""),
        fe::execute("", 0),
        fe::sync(),
    ]
    .concat();
    let first = exchange(&mut s, &batch).await;
    let before = hits(&proxy);
    let second = exchange(&mut s, &batch).await;
    assert_eq!(hits(&proxy), before + 1);
    assert_eq!(first, second);
    // The hit's Parse never reached the coordinator; a Bind of the unnamed statement without a
    // Parse must still work, and show no ParseComplete the client did not ask for.
    let rebind = [fe::bind("", "", &[Some("6")]), fe::execute("", 0), fe::sync()].concat();
    let third = exchange(&mut s, &rebind).await;
    assert_eq!(common::tags(&third), "2DCZ", "{third:?}");
    // Pipelined batches are relayed (the second cannot overtake the first).
    let two = [batch.clone(), batch.clone()].concat();
    let both = exchange(&mut s, &two).await;
    let rest = read_until_ready(&mut s).await;
    assert_eq!(common::tags(&both) + &common::tags(&rest), "12TDCZ12TDCZ");
    proxy.stop().await;
}

#[tokio::test]
async fn never_cached() {
    let (proxy, _, db) = proxy_for("cache_never", &[("cache.tables", "users,config,pg_class,tmp_t,never_v,never_mv")]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    let twice = |sql: &'static str| {
        let c = &c;
        async move {
            c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    twice("SELECT username, now() FROM users WHERE user_id = 1").await;
    assert_eq!(bypassed(&proxy, "volatile_function"), 2);
    twice("SELECT username FROM users WHERE user_id = 1 FOR UPDATE").await;
    assert_eq!(bypassed(&proxy, "locking_clause"), 2);
    twice("SELECT relname FROM pg_class LIMIT 1").await;
    assert_eq!(bypassed(&proxy, "temp_or_catalog"), 2);
    twice("SELECT count(*) FROM local_notes").await;
    assert_eq!(bypassed(&proxy, "not_opted_in"), 2);
    // The session's own temporary table: known to be one from its CREATE.
    c.batch_execute("CREATE TEMP TABLE tmp_t (x int); INSERT INTO tmp_t VALUES (1)").await.expect("temp");
    twice("SELECT x FROM tmp_t").await;
    assert_eq!(bypassed(&proxy, "temp_or_catalog"), 4);
    c.batch_execute("CREATE VIEW never_v AS SELECT 1 AS x").await.expect("view");
    twice("SELECT x FROM never_v").await;
    assert_eq!(bypassed(&proxy, "unknown_relation"), 2);
    // A materialized view changes on REFRESH, which names no table it reads: never cached.
    c.batch_execute("CREATE MATERIALIZED VIEW never_mv AS SELECT 1 AS x").await.expect("materialized view");
    let store = proxy.ctx.stores.for_database(&db);
    let known = common::eventually(10, || {
        let store = std::sync::Arc::clone(&store);
        async move { store.topology().as_deref().and_then(|t| t.relation_kind("public", "never_mv")) == Some('m') }
    })
    .await;
    assert!(known, "the change probe saw the new materialized view");
    twice("SELECT x FROM never_mv").await;
    assert_eq!(bypassed(&proxy, "unknown_relation"), 4);
    c.batch_execute("BEGIN").await.expect("begin");
    twice("SELECT username FROM users WHERE user_id = 1").await;
    c.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(bypassed(&proxy, "transaction"), 2);
    // A statement that fails is not stored.
    for _ in 0..2 {
        let e = c.simple_query("SELECT no_such_column FROM users WHERE user_id = 1").await;
        assert!(e.is_err());
        // tokio-postgres returns at the ErrorResponse; wait for its ReadyForQuery (a statement
        // still outstanding keeps the next one from being answered from the cache).
        c.simple_query("SELECT 1").await.expect("sync");
    }
    assert_eq!(bypassed(&proxy, "error_result"), 2, "{:?}", stats(&proxy));
    // Too large to store: relayed whole, never stored.
    let (big, _, bdb) = proxy_for("cache_never_big", &[("cache.tables", "users"), ("cache.max_entry_bytes", "1000")]).await;
    let b = test_support::connect(&big.url(&bdb)).await;
    for _ in 0..2 {
        let rows = b.simple_query("SELECT * FROM users WHERE user_id < 100").await.expect("big");
        assert_eq!(rows.iter().filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))).count(), 99);
    }
    assert_eq!(bypassed(&big, "too_large"), 2);
    assert_eq!(hits(&proxy) + hits(&big), 0, "{:?}", stats(&proxy));
    big.stop().await;
    proxy.stop().await;
}

#[tokio::test]
async fn hints_opt_in_and_out() {
    let (proxy, _, db) = proxy_for("cache_hints", &[]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    let hinted = "/* citus-proxy: cache ttl=30s */ SELECT count(*) FROM events";
    one_text(&c, hinted).await;
    one_text(&c, hinted).await;
    assert_eq!(hits(&proxy), 1);
    let (p2, _, db2) = proxy_for("cache_hints_off", &[("cache.tables", "events")]).await;
    let c2 = test_support::connect(&p2.url(&db2)).await;
    let off = "/* citus-proxy: cache off */ SELECT count(*) FROM events";
    one_text(&c2, off).await;
    one_text(&c2, off).await;
    assert_eq!(hits(&p2), 0, "`cache off` wins over a table rule");
    // A shape rule matches the statement whatever its literals.
    let (p3, _, db3) =
        proxy_for("cache_shape", &[("cache.rules", r#"[{ shape = "SELECT kind FROM events WHERE user_id = $1 LIMIT 1", ttl = "10s" }]"#)])
            .await;
    let c3 = test_support::connect(&p3.url(&db3)).await;
    one_text(&c3, "SELECT kind FROM events WHERE user_id = 9 LIMIT 1").await;
    one_text(&c3, "SELECT kind FROM events WHERE user_id = 9 LIMIT 1").await;
    assert_eq!(hits(&p3), 1);
    for p in [proxy, p2, p3] {
        p.stop().await;
    }
}

#[tokio::test]
async fn roles_never_see_each_others_rows() {
    let (proxy, direct, db) = proxy_for("cache_roles", &[("cache.tables", "notes_rls")]).await;
    let d = test_support::connect(&direct).await;
    d.batch_execute(
        "CREATE TABLE notes_rls (owner text, body text);
         INSERT INTO notes_rls VALUES ('cache_alice', 'alice secret'), ('cache_bob', 'bob secret');
         ALTER TABLE notes_rls ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON notes_rls USING (owner = current_user);
         DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cache_alice') THEN CREATE ROLE cache_alice LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cache_bob') THEN CREATE ROLE cache_bob LOGIN; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cache_carol') THEN CREATE ROLE cache_carol LOGIN; END IF;
         END $$;
         GRANT SELECT ON notes_rls TO cache_alice, cache_bob;",
    )
    .await
    .expect("set up RLS");
    // The table appeared after the proxy loaded its metadata.
    proxy.ctx.metadata.request_refresh();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let q = "SELECT string_agg(body, ',') FROM notes_rls";
    for round in 0..2 {
        for (role, expect) in [("cache_alice", "alice secret"), ("cache_bob", "bob secret")] {
            let c = test_support::connect(&proxy.url_for(role, None, &db)).await;
            assert_eq!(one_text(&c, q).await, expect, "{role}, round {round}");
        }
    }
    assert_eq!(hits(&proxy), 2, "each role hits its own entry: {:?}", stats(&proxy));
    // A role without the privilege gets the coordinator's error, not a cached row.
    let carol = test_support::connect(&proxy.url_for("cache_carol", None, &db)).await;
    let e = carol.simple_query(q).await.expect_err("no privilege");
    assert_eq!(e.code().map(|c| c.code()), Some("42501"));
    // SET ROLE changes whose rows a statement sees, so it changes the key.
    let c = test_support::connect(&proxy.url(&db)).await;
    c.batch_execute("SET ROLE cache_alice").await.expect("set role");
    assert_eq!(one_text(&c, q).await, "alice secret");
    c.batch_execute("SET ROLE cache_bob").await.expect("set role");
    assert_eq!(one_text(&c, q).await, "bob secret");
    proxy.stop().await;
}

#[tokio::test]
async fn concurrent_misses_run_one_upstream_query() {
    let (proxy, direct, db) =
        proxy_for("cache_flight", &[("cache.tables", "flight_log"), ("cache.cacheable_functions", "slow_count")]).await;
    let d = test_support::connect(&direct).await;
    d.batch_execute(
        "CREATE TABLE flight_log (n int); INSERT INTO flight_log VALUES (1); CREATE SEQUENCE flight_calls;
         CREATE FUNCTION slow_count() RETURNS bigint LANGUAGE plpgsql AS
           $$ BEGIN PERFORM nextval('flight_calls'); PERFORM pg_sleep(0.4); RETURN (SELECT count(*) FROM flight_log); END $$;",
    )
    .await
    .expect("set up");
    proxy.ctx.metadata.request_refresh();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let url = Arc::new(proxy.url(&db));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = Arc::clone(&url);
        tasks.push(tokio::spawn(async move {
            let c = test_support::connect(&url).await;
            one_text(&c, "SELECT slow_count() FROM flight_log LIMIT 1").await
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let calls: i64 = d.query_one("SELECT last_value FROM flight_calls", &[]).await.expect("calls").get(0);
    let s = stats(&proxy);
    assert_eq!(calls, 1, "one upstream execution for 8 concurrent misses: {s:?}");
    assert_eq!(s.misses, 8, "{s:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn writes_are_never_answered_from_the_cache_and_copy_and_truncate_invalidate() {
    use futures_util::SinkExt;
    let (proxy, _, db) = proxy_for("cache_writes", &[("cache.tables", "config")]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    // The same write twice runs twice.
    let bump = "UPDATE config SET value = value || 'x' WHERE key = 'key1' RETURNING value";
    assert_eq!(one_text(&c, bump).await, "value1x");
    assert_eq!(one_text(&c, bump).await, "value1xx");
    let count = "SELECT count(*) FROM config";
    let before = one_text(&c, count).await;
    assert_eq!(one_text(&c, count).await, before);
    assert_eq!(hits(&proxy), 1);
    // COPY FROM through the proxy invalidates the table.
    let sink = c.copy_in("COPY config (key, value) FROM STDIN").await.expect("copy in");
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"copied\tvalue\n")).await.expect("copy data");
    assert_eq!(sink.finish().await.expect("copy done"), 1);
    let after: i64 = one_text(&c, count).await.parse().expect("count");
    assert_eq!(after, before.parse::<i64>().expect("count") + 1, "a stale count after COPY");
    // So does TRUNCATE.
    c.batch_execute("TRUNCATE config").await.expect("truncate");
    assert_eq!(one_text(&c, count).await, "0");
    proxy.stop().await;
}

#[tokio::test]
async fn a_session_lost_with_writes_outstanding_invalidates_them() {
    let (proxy, _, db) = proxy_for("cache_lost", &[("cache.tables", "users")]).await;
    let c = test_support::connect(&proxy.url(&db)).await;
    let read = "SELECT username FROM users WHERE user_id = 42";
    one_text(&c, read).await;
    one_text(&c, read).await;
    assert_eq!(hits(&proxy), 1);
    // A transaction that writes, then the client vanishes: whether it committed is unknown to
    // the proxy (here it did not), so what it wrote is invalidated.
    let mut s = common::raw_session_on(proxy.addr, &db).await;
    s.write_all(&fe::query("BEGIN; UPDATE users SET email = email WHERE user_id = 42")).await.expect("send");
    read_until_ready(&mut s).await;
    drop(s);
    let invalidated = common::eventually(5, || async { stats(&proxy).invalidations > 0 }).await;
    assert!(invalidated, "{:?}", stats(&proxy));
    one_text(&c, read).await;
    assert_eq!(hits(&proxy), 1, "the entry of the written shard is gone: {:?}", stats(&proxy));
    proxy.stop().await;
}

/// A cacheable batch whose Sync declares a body the proxy has not read yet: the proxy used to
/// forward (or serve) past the end of what it had buffered and panic the session. Now the client
/// is told of its protocol violation, and the proxy serves others as before.
#[tokio::test]
async fn a_sync_declaring_a_body_is_a_protocol_violation_not_a_panic() {
    let (proxy, _, db) = proxy_for("cache_bad_sync", &[("cache.tables", "users")]).await;
    let mut s = common::raw_session_on(proxy.addr, &db).await;
    let mut batch =
        [fe::parse("", "SELECT username FROM users WHERE user_id = $1", &[20]), fe::bind("", "", &[Some("5")]), fe::execute("", 0)]
            .concat();
    // A Sync whose length says four body bytes follow; they never come in this write.
    batch.extend_from_slice(&[b'S', 0, 0, 0, 8]);
    s.write_all(&batch).await.expect("send");
    let reply = common::read_until_closed(&mut s).await;
    let error = reply.iter().find(|m| m.0 == b'E').map(|m| String::from_utf8_lossy(&m.1).into_owned());
    assert!(error.as_deref().is_some_and(|e| e.contains("08P01")), "a protocol violation is reported: {reply:?}");
    let c = test_support::connect(&proxy.url(&db)).await;
    assert!(!one_text(&c, "SELECT username FROM users WHERE user_id = 5").await.is_empty(), "others are served");
    proxy.stop().await;
}
