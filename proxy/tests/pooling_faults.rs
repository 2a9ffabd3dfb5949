//! Pooling under faults: an exhausted pool (pool.wait_timeout), server connections terminated
//! while idle in the pool or while a client's transaction runs on them.
//!
//! A PostgreSQL restart is not tested here: the harness runs one server per test binary with no
//! restart hook, and restarting it under the other tests of the binary would fail them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pool::{code, connect, direct, pid, pooled_with, simple_value, within};
use common::{backend_gone, eventually};

// ---- 6. Pool exhaustion ----

#[tokio::test]
async fn exhausted_pool_answers_53300_after_wait_timeout() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "1", routed, &[("pool.wait_timeout", "1s")]).await;
        let a = connect(&p).await;
        let b = connect(&p).await;
        a.batch_execute("BEGIN").await.unwrap();
        let held = pid(&a).await;
        let started = Instant::now();
        let e = within(15, "b waiting for the only server connection", b.simple_query("SELECT 1")).await.expect_err("pool exhausted");
        let waited = started.elapsed();
        assert_eq!(code(&e), "53300", "routing {routed}: {e}");
        let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
        assert!(msg.contains("pool.wait_timeout"), "the message names the setting: {msg}");
        assert!(waited >= Duration::from_millis(900), "b waited for pool.wait_timeout ({waited:?})");
        // a is not disturbed, and after it commits new clients work.
        assert_eq!(pid(&a).await, held);
        a.batch_execute("COMMIT").await.unwrap();
        let c = connect(&p).await;
        assert_eq!(simple_value(&c, "SELECT 'c works'").await.as_deref(), Some("c works"));
        assert_eq!(simple_value(&a, "SELECT 'a works'").await.as_deref(), Some("a works"));
        p.stop().await;
    }
}

/// A client that waits in the queue and gets the connection within pool.wait_timeout runs.
#[tokio::test]
async fn a_queued_client_gets_the_connection_when_it_is_given_back() {
    let p = pooled_with("transaction", "1", false, &[("pool.wait_timeout", "20s")]).await;
    let a = connect(&p).await;
    let b = Arc::new(connect(&p).await);
    a.batch_execute("BEGIN").await.unwrap();
    let b2 = Arc::clone(&b);
    let queued = tokio::spawn(async move { b2.simple_query("SELECT 'b ran'").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!queued.is_finished(), "b waits while a's transaction holds the only connection");
    a.batch_execute("COMMIT").await.unwrap();
    let r = within(10, "b after a committed", queued).await.unwrap();
    assert!(r.is_ok(), "{r:?}");
    p.stop().await;
}

// ---- 7. Server connections killed ----

async fn terminate(pid: i32) {
    let d = direct().await;
    let ok: bool = d.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap().get(0);
    assert!(ok, "pg_terminate_backend({pid})");
    assert!(backend_gone(pid, 10).await, "backend {pid} still there 10 s after pg_terminate_backend");
}

/// Killed while idle in the pool, with the defaults (server_check_delay 30s): the next
/// statement of a client must still work.
#[tokio::test]
async fn connection_killed_while_idle_in_the_pool() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "1", routed, &[]).await;
        let a = connect(&p).await;
        let old = pid(&a).await;
        terminate(old).await;
        let r = within(15, "first statement after the idle connection was killed", a.query_one("SELECT pg_backend_pid()", &[])).await;
        let new: i32 = r
            .unwrap_or_else(|e| {
                panic!("routing {routed}: the statement after the idle server connection was terminated failed: {e} ({})", code(&e))
            })
            .get(0);
        assert_ne!(new, old);
        p.stop().await;
    }
}

/// The same with pool.server_check_delay = 0 (always check before handing out).
#[tokio::test]
async fn connection_killed_while_idle_with_checks_always_on() {
    let p = pooled_with("transaction", "1", false, &[("pool.server_check_delay", "0s")]).await;
    let a = connect(&p).await;
    let old = pid(&a).await;
    terminate(old).await;
    let r = within(15, "statement after the kill", a.query_one("SELECT pg_backend_pid()", &[])).await;
    let new: i32 = r.unwrap_or_else(|e| panic!("statement after the idle connection was terminated: {e} ({})", code(&e))).get(0);
    assert_ne!(new, old);
    // Several connections killed at once, several clients after.
    let p2 = pooled_with("transaction", "3", false, &[("pool.server_check_delay", "0s")]).await;
    let cs = futures_util::future::join_all((0..3).map(|_| connect(&p2))).await;
    for c in &cs {
        c.batch_execute("BEGIN").await.unwrap();
    }
    let mut pids = Vec::new();
    for c in &cs {
        pids.push(pid(c).await);
    }
    for c in &cs {
        c.batch_execute("COMMIT").await.unwrap();
    }
    for pid in pids {
        terminate(pid).await;
    }
    for c in &cs {
        assert_eq!(within(15, "after killing all", simple_value(c, "SELECT 'ok'")).await.as_deref(), Some("ok"));
    }
    p2.stop().await;
    p.stop().await;
}

#[tokio::test]
async fn connection_killed_inside_a_transaction() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "2", routed, &[]).await;
        let a = connect(&p).await;
        let b = connect(&p).await;
        a.batch_execute("BEGIN").await.unwrap();
        let victim = pid(&a).await;
        terminate(victim).await;
        let r = within(15, "a's statement on a killed server connection", a.simple_query("SELECT 1")).await;
        assert!(r.is_err(), "routing {routed}: a's transaction lost its server connection: its statement must fail, got {r:?}");
        // Others continue.
        for _ in 0..5 {
            assert_eq!(simple_value(&b, "SELECT 'b fine'").await.as_deref(), Some("b fine"));
        }
        let c = connect(&p).await;
        assert_eq!(simple_value(&c, "SELECT 'c fine'").await.as_deref(), Some("c fine"));
        // The dead connection is not handed out again: two clients in parallel transactions.
        b.batch_execute("BEGIN").await.unwrap();
        c.batch_execute("BEGIN").await.unwrap();
        let (pb, pc) = (pid(&b).await, pid(&c).await);
        assert!(pb != victim && pc != victim && pb != pc);
        b.batch_execute("COMMIT").await.unwrap();
        c.batch_execute("COMMIT").await.unwrap();
        p.stop().await;
    }
}

/// A client's backend is killed while its statement runs (pg_sleep): it gets an error, not a
/// hang; the pool replaces the connection.
#[tokio::test]
async fn connection_killed_while_a_statement_runs() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = Arc::new(connect(&p).await);
    let d = direct().await;
    let a2 = Arc::clone(&a);
    let sleeper = tokio::spawn(async move { a2.simple_query("SELECT pg_sleep(30)").await });
    let found = eventually(10, || {
        let d = &d;
        async move {
            d.query_one("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'", &[])
                .await
                .map(|r| r.get::<_, i64>(0) == 1)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(found, "the pg_sleep never showed up");
    let victim: i32 =
        d.query_one("SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'", &[]).await.unwrap().get(0);
    terminate(victim).await;
    let r = within(15, "a's killed pg_sleep", sleeper).await.unwrap();
    assert!(r.is_err(), "the statement on a killed backend must fail: {r:?}");
    let b = connect(&p).await;
    assert_eq!(within(15, "a new client after the kill", simple_value(&b, "SELECT 'b fine'")).await.as_deref(), Some("b fine"));
    p.stop().await;
}

/// Session mode: the client's own connection killed while idle. The client gets an error on
/// its next statement or a working connection, never a hang; other clients work.
#[tokio::test]
async fn session_mode_connection_killed() {
    let p = pooled_with("session", "2", false, &[]).await;
    let a = connect(&p).await;
    let victim = pid(&a).await;
    terminate(victim).await;
    let r = within(15, "session-mode statement after its backend was killed", a.simple_query("SELECT 1")).await;
    if r.is_ok() {
        assert_ne!(pid(&a).await, victim);
    }
    let b = connect(&p).await;
    assert_eq!(simple_value(&b, "SELECT 'b fine'").await.as_deref(), Some("b fine"));
    let c = connect(&p).await;
    assert_eq!(simple_value(&c, "SELECT 'c fine'").await.as_deref(), Some("c fine"));
    p.stop().await;
}

// ---- Clients that leave at a bad moment ----

/// A client that disconnects inside a transaction: its connection must not reach the next
/// client with the transaction still open.
#[tokio::test]
async fn client_leaving_inside_a_transaction_leaves_nothing_open() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = connect(&p).await;
    a.batch_execute("BEGIN; CREATE TABLE pool_left_open (a int)").await.unwrap();
    drop(a);
    let b = connect(&p).await;
    let r = within(15, "b after a left mid-transaction", b.query_one("SELECT to_regclass('pool_left_open') IS NULL", &[])).await.unwrap();
    assert!(r.get::<_, bool>(0), "b sees a's uncommitted table: a's transaction reached b");
    // Simple protocol: one statement, its own transaction, so now() is its start.
    let own = simple_value(&b, "SELECT (now() = statement_timestamp())::text").await;
    assert_eq!(own.as_deref(), Some("true"), "b's statement ran inside an open transaction");
    p.stop().await;
}

/// A client that disconnects in the middle of COPY FROM STDIN, or while its statement runs:
/// the next client gets a clean connection without waiting for the old statement.
#[tokio::test]
async fn client_leaving_mid_copy_or_mid_statement() {
    use common::{fe, raw_session};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = direct().await;
    d.batch_execute("DROP TABLE IF EXISTS pool_copy_left; CREATE TABLE pool_copy_left (a int)").await.unwrap();
    let p = pooled_with("transaction", "1", false, &[("pool.wait_timeout", "10s")]).await;
    let mut s = raw_session(p.addr).await;
    s.write_all(&fe::query("COPY pool_copy_left FROM STDIN")).await.unwrap();
    let mut head = [0u8; 1];
    within(10, "CopyInResponse", s.read_exact(&mut head)).await.unwrap();
    assert_eq!(head[0], b'G');
    s.write_all(&fe::copy_data(b"1\n2\n")).await.unwrap();
    drop(s);
    let b = connect(&p).await;
    assert_eq!(
        within(15, "b after a client left mid-COPY", simple_value(&b, "SELECT count(*) FROM pool_copy_left")).await.as_deref(),
        Some("0")
    );
    // Mid-statement.
    let mut s = raw_session(p.addr).await;
    s.write_all(&fe::query("SELECT pg_sleep(20)")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);
    let started = Instant::now();
    assert_eq!(within(15, "b after a client left mid-statement", simple_value(&b, "SELECT 'b fine'")).await.as_deref(), Some("b fine"));
    assert!(started.elapsed() < Duration::from_secs(15));
    p.stop().await;
}

// ---- Caps and housekeeping ----

/// pool.max_db_connections caps the pool below pool.size: the client past the cap waits and
/// gets 53300 at pool.wait_timeout; the held connections never exceed the cap.
#[tokio::test]
async fn max_db_connections_caps_the_pool() {
    let p = pooled_with("transaction", "10", false, &[("pool.max_db_connections", "2"), ("pool.wait_timeout", "1s")]).await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let c = connect(&p).await;
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    let e = within(15, "c past the cap", c.simple_query("SELECT 1")).await.expect_err("capped");
    assert_eq!(code(&e), "53300", "{e}");
    assert!(p.ctx.pools.total() <= 2, "{} server connections with max_db_connections 2", p.ctx.pools.total());
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    let d = connect(&p).await;
    assert_eq!(simple_value(&d, "SELECT 'under the cap'").await.as_deref(), Some("under the cap"));
    p.stop().await;
}

/// Idle connections past pool.server_idle_timeout are closed; a connection past
/// pool.server_lifetime is closed when it comes back; clients keep working either way.
#[tokio::test]
async fn idle_timeout_and_lifetime_close_server_connections() {
    let p = pooled_with("transaction", "3", false, &[("pool.server_idle_timeout", "1s")]).await;
    let cs = futures_util::future::join_all((0..3).map(|_| connect(&p))).await;
    let mut pids = Vec::new();
    for c in &cs {
        c.batch_execute("BEGIN").await.unwrap();
        pids.push(pid(c).await);
    }
    for c in &cs {
        c.batch_execute("COMMIT").await.unwrap();
    }
    for pid in &pids {
        assert!(backend_gone(*pid, 20).await, "backend {pid} idle in the pool still open 20 s after pool.server_idle_timeout = 1s");
    }
    assert_eq!(simple_value(&cs[0], "SELECT 'after idle close'").await.as_deref(), Some("after idle close"));
    p.stop().await;

    let p = pooled_with("transaction", "1", false, &[("pool.server_lifetime", "1s")]).await;
    let a = connect(&p).await;
    let first = pid(&a).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Back once more after its lifetime: closed then, a new one after.
    let _ = pid(&a).await;
    let later = eventually(10, || {
        let a = &a;
        async move { pid(a).await != first }
    })
    .await;
    assert!(later, "a connection past pool.server_lifetime is still handed out");
    assert!(backend_gone(first, 10).await);
    p.stop().await;
}
