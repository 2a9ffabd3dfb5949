//! Session state in transaction pooling: SETs and startup parameters follow their client from
//! one server connection to the next and never reach another client; what cannot move (LISTEN,
//! temporary tables, session advisory locks) pins the client to its connection; session mode
//! resets a connection between clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pool::{code, connect, direct, pid, pooled_with, simple_value, within};
use common::{connect_observed, eventually, Seen};
use futures_util::future::join_all;
use tokio_postgres::NoTls;

#[tokio::test]
async fn set_outside_a_transaction_persists_for_its_client_only() {
    let d = direct().await;
    d.batch_execute(
        "DROP SCHEMA IF EXISTS iso_a CASCADE; DROP SCHEMA IF EXISTS iso_b CASCADE; CREATE SCHEMA iso_a; CREATE SCHEMA iso_b; \
         CREATE TABLE iso_a.t (v text); INSERT INTO iso_a.t VALUES ('a'); CREATE TABLE iso_b.t (v text); INSERT INTO iso_b.t VALUES ('b')",
    )
    .await
    .unwrap();
    let default_tz = simple_value(&d, "SHOW TimeZone").await.unwrap();
    let p = pooled_with("transaction", "1", false, &[]).await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let c = connect(&p).await;
    a.batch_execute("SET search_path = iso_a; SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    b.batch_execute("SET search_path = iso_b").await.unwrap();
    let mut problems = Vec::new();
    for round in 0..3 {
        // b's and c's transactions run on the same (only) server connection in between.
        b.batch_execute("BEGIN; SELECT 1; COMMIT").await.unwrap();
        let shown = simple_value(&c, "SHOW TimeZone").await;
        if shown.as_deref() != Some(default_tz.as_str()) {
            problems.push(format!("round {round}: client c sees TimeZone {shown:?} (a set it; c never did)"));
        }
        for (who, client, want) in [("a", &a, "a"), ("b", &b, "b")] {
            let v = client.simple_query("SELECT v FROM t").await;
            match v {
                Ok(m) => {
                    let got = m.iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    });
                    if got.as_deref() != Some(want) {
                        problems.push(format!("round {round}: client {who} read t = {got:?} through its search_path, expected {want:?}"));
                    }
                }
                Err(e) => problems.push(format!("round {round}: client {who}: SELECT v FROM t: {e}")),
            }
        }
        let tz = simple_value(&a, "SHOW TimeZone").await;
        if tz.as_deref() != Some("Asia/Tokyo") {
            problems.push(format!("round {round}: client a's TimeZone is {tz:?}, it set Asia/Tokyo"));
        }
        // Inside a transaction too.
        a.batch_execute("BEGIN").await.unwrap();
        let tz = simple_value(&a, "SHOW TimeZone").await;
        a.batch_execute("COMMIT").await.unwrap();
        if tz.as_deref() != Some("Asia/Tokyo") {
            problems.push(format!("round {round}: inside a transaction client a's TimeZone is {tz:?}"));
        }
    }
    p.stop().await;
    assert!(problems.is_empty(), "session SETs do not follow their client in transaction mode:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn listen_pins_the_backend_and_receives_notify() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "2", routed, &[]).await;
        let a = connect_observed(&p.url("postgres")).await;
        let b = connect(&p).await;
        a.client.batch_execute("LISTEN pool_chan").await.unwrap();
        let mine = pid(&a.client).await;
        for i in 0..10 {
            // b's statements run (on the other connection) in between.
            let other = pid(&b).await;
            assert_ne!(other, mine, "b got the backend a is pinned to (round {i})");
            assert_eq!(pid(&a.client).await, mine, "after LISTEN, a keeps its backend (round {i})");
        }
        b.batch_execute("NOTIFY pool_chan, 'hello from b'").await.unwrap();
        let got = eventually(10, || {
            let seen = Arc::clone(&a.seen);
            async move {
                seen.lock().unwrap().iter().any(
                    |s| matches!(s, Seen::Notification { channel, payload, .. } if channel == "pool_chan" && payload == "hello from b"),
                )
            }
        })
        .await;
        assert!(got, "a (LISTEN pool_chan) never received b's NOTIFY (routing {routed}); saw {:?}", a.seen.lock().unwrap());
        // A NOTIFY while a is idle between statements is delivered too.
        b.batch_execute("NOTIFY pool_chan, 'second'").await.unwrap();
        let got = eventually(10, || {
            let seen = Arc::clone(&a.seen);
            async move { seen.lock().unwrap().iter().any(|s| matches!(s, Seen::Notification { payload, .. } if payload == "second")) }
        })
        .await;
        assert!(got, "second NOTIFY not received");
        // When a leaves, its connection is cleaned (no listener left) before it serves others:
        // two clients in open transactions hold both connections of the pool.
        drop(a);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = connect(&p).await;
        b.batch_execute("BEGIN").await.unwrap();
        c.batch_execute("BEGIN").await.unwrap();
        for (who, x) in [("b", &b), ("c", &c)] {
            let r = x.query_one("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_listening_channels())", &[]).await.unwrap();
            let (backend, listening): (i32, i64) = (r.get(0), r.get(1));
            assert_eq!(listening, 0, "client {who} got backend {backend} (a's was {mine}) still listening after a left");
            x.batch_execute("COMMIT").await.unwrap();
        }
        p.stop().await;
    }
}

/// LISTEN written after a comment, or as the second statement of a string, pins the client as
/// a bare LISTEN does: the client gets its notifications and no other client gets them.
#[tokio::test]
async fn listen_after_a_comment_or_in_a_multi_statement_string_pins() {
    let mut problems = Vec::new();
    for (i, sql) in
        ["/* subscribe */ LISTEN pool_chan_c", "-- subscribe\nLISTEN pool_chan_c", "SELECT 1; LISTEN pool_chan_c"].into_iter().enumerate()
    {
        let p = pooled_with("transaction", "2", false, &[]).await;
        let a = connect_observed(&p.url("postgres")).await;
        let url = p.url("postgres");
        let others: Vec<_> = join_all((0..3).map(|_| connect_observed(&url))).await;
        a.client.batch_execute(sql).await.unwrap();
        // Others' statements take the connections in turn.
        for _ in 0..5 {
            let busy = join_all(others.iter().map(|o| o.client.simple_query("SELECT pg_sleep(0.005)"))).await;
            assert!(busy.iter().all(Result::is_ok));
            a.client.simple_query("SELECT 1").await.unwrap();
        }
        let d = direct().await;
        d.batch_execute(&format!("NOTIFY pool_chan_c, 'n{i}'")).await.unwrap();
        // Every client runs a statement, so a notification queued on any connection is relayed.
        let _ = join_all(others.iter().map(|o| o.client.simple_query("SELECT pg_sleep(0.05)"))).await;
        let _ = a.client.simple_query("SELECT pg_sleep(0.05)").await;
        let payload = format!("n{i}");
        let got = eventually(5, || {
            let seen = Arc::clone(&a.seen);
            let payload = payload.clone();
            async move { seen.lock().unwrap().iter().any(|s| matches!(s, Seen::Notification { payload: pl, .. } if *pl == payload)) }
        })
        .await;
        let strays: Vec<_> = others.iter().flat_map(|o| o.take()).filter(|s| matches!(s, Seen::Notification { .. })).collect();
        p.stop().await;
        if !strays.is_empty() {
            problems.push(format!("{sql:?}: other clients got a's notification: {strays:?}"));
        }
        if !got {
            problems.push(format!("{sql:?}: the listening client never got its notification"));
        }
    }
    assert!(problems.is_empty(), "LISTEN did not pin:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn temp_table_outside_a_transaction_stays_usable() {
    let p = pooled_with("transaction", "2", false, &[]).await;
    let a = connect(&p).await;
    let others: Vec<_> = join_all((0..4).map(|_| connect(&p))).await;
    a.batch_execute("CREATE TEMP TABLE pool_tmp (a int); INSERT INTO pool_tmp SELECT generate_series(1, 10)").await.unwrap();
    for i in 0..10 {
        let busy = join_all(others.iter().map(|o| o.simple_query("SELECT pg_sleep(0.005)"))).await;
        assert!(busy.iter().all(Result::is_ok), "{busy:?}");
        a.execute("INSERT INTO pool_tmp VALUES ($1)", &[&(100 + i)]).await.unwrap_or_else(|e| panic!("round {i}: temp table gone: {e}"));
        let n: i64 = a.query_one("SELECT count(*) FROM pool_tmp", &[]).await.unwrap().get(0);
        assert_eq!(n, 11 + i as i64);
        // Nobody else sees it.
        for o in &others {
            let e = o.simple_query("SELECT * FROM pool_tmp").await.expect_err("another client sees a's temp table");
            assert_eq!(code(&e), "42P01");
        }
    }
    p.stop().await;
}

/// `CREATE TABLE pg_temp.x` makes a temporary table as `CREATE TEMP TABLE x` does: the client
/// must keep its backend (pin) or it loses the table to the next transaction's connection.
#[tokio::test]
async fn table_created_in_pg_temp_stays_usable() {
    let p = pooled_with("transaction", "2", false, &[]).await;
    let a = connect(&p).await;
    let others: Vec<_> = join_all((0..4).map(|_| connect(&p))).await;
    a.batch_execute("CREATE TABLE pg_temp.pool_tmp2 (a int); INSERT INTO pg_temp.pool_tmp2 VALUES (1)").await.unwrap();
    for i in 0..10 {
        // Others hold both connections for a moment, so a's next statement may get either.
        let busy = join_all(others.iter().map(|o| o.simple_query("SELECT pg_sleep(0.005)"))).await;
        assert!(busy.iter().all(Result::is_ok), "{busy:?}");
        let r = a.query_one("SELECT count(*) FROM pg_temp.pool_tmp2", &[]).await;
        let n: i64 = r.unwrap_or_else(|e| panic!("round {i}: a's table in pg_temp is gone ({}): {e}", code(&e))).get(0);
        assert_eq!(n, 1);
    }
    p.stop().await;
}

/// `CREATE OR REPLACE TEMP VIEW` makes session state as `CREATE TEMP VIEW` does.
#[tokio::test]
async fn or_replace_temp_view_stays_usable() {
    let p = pooled_with("transaction", "2", false, &[]).await;
    let a = connect(&p).await;
    let others: Vec<_> = join_all((0..4).map(|_| connect(&p))).await;
    a.batch_execute("CREATE OR REPLACE TEMP VIEW pool_tv AS SELECT 42 AS v").await.unwrap();
    for i in 0..10 {
        let busy = join_all(others.iter().map(|o| o.simple_query("SELECT pg_sleep(0.005)"))).await;
        assert!(busy.iter().all(Result::is_ok), "{busy:?}");
        let r = a.query_one("SELECT v FROM pool_tv", &[]).await;
        let v: i32 = r.unwrap_or_else(|e| panic!("round {i}: a's temp view is gone ({}): {e}", code(&e))).get(0);
        assert_eq!(v, 42);
    }
    p.stop().await;
}

/// Session mode: what a client left on its connection (settings, temp tables, a session lock,
/// a LISTEN) is reset (pool.reset_query) before the next client gets it.
#[tokio::test]
async fn session_mode_resets_a_connection_between_clients() {
    let p = pooled_with("session", "1", false, &[]).await;
    let d = direct().await;
    let default_tz = simple_value(&d, "SHOW TimeZone").await.unwrap();
    let a = connect(&p).await;
    let mine = pid(&a).await;
    a.batch_execute(
        "SET TimeZone = 'Asia/Tokyo'; CREATE TEMP TABLE sess_tmp (a int); SELECT pg_advisory_lock(515151); LISTEN sess_chan; \
         PREPARE sess_q AS SELECT 1",
    )
    .await
    .unwrap();
    drop(a);
    let b = connect(&p).await;
    assert_eq!(within(15, "b after a left", pid(&b)).await, mine, "pool.size 1: b gets a's connection back");
    assert_eq!(simple_value(&b, "SHOW TimeZone").await, Some(default_tz));
    assert_eq!(code(&b.simple_query("SELECT * FROM sess_tmp").await.expect_err("temp table gone")), "42P01");
    assert_eq!(simple_value(&b, "SELECT pg_try_advisory_lock(515151)::text").await.as_deref(), Some("true"));
    assert_eq!(simple_value(&b, "SELECT count(*) FROM pg_listening_channels()").await.as_deref(), Some("0"));
    assert_eq!(simple_value(&b, "SELECT count(*) FROM pg_prepared_statements").await.as_deref(), Some("0"));
    p.stop().await;
}

/// Startup parameters (application_name, options) are the client's own in transaction mode,
/// whatever connection serves it. Expected to fail until settings are re-applied per client.
#[tokio::test]
async fn startup_parameters_follow_their_client() {
    let p = pooled_with("transaction", "1", false, &[]).await;
    let mut clients = Vec::new();
    for name in ["first-app", "second-app"] {
        let mut cfg: tokio_postgres::Config = p.url("postgres").parse().unwrap();
        cfg.application_name(name);
        let (c, conn) = cfg.connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        clients.push((name, c));
    }
    let mut problems = Vec::new();
    for round in 0..3 {
        for (name, c) in &clients {
            let shown = simple_value(c, "SHOW application_name").await;
            if shown.as_deref() != Some(name) {
                problems.push(format!("round {round}: client {name} sees application_name {shown:?}"));
            }
        }
    }
    p.stop().await;
    assert!(problems.is_empty(), "startup parameters do not follow their client:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn session_advisory_lock_held_and_released_by_the_same_client() {
    let p = pooled_with("transaction", "2", false, &[]).await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let mine = pid(&a).await;
    assert!(a.query_one("SELECT pg_try_advisory_lock(424242)", &[]).await.unwrap().get::<_, bool>(0));
    let holder = pid(&a).await;
    for _ in 0..5 {
        assert!(!b.query_one("SELECT pg_try_advisory_lock(424242)", &[]).await.unwrap().get::<_, bool>(0), "b got a's session lock");
        assert_eq!(pid(&a).await, holder, "a lost the backend that holds its lock");
    }
    let _ = mine;
    assert!(a.query_one("SELECT pg_advisory_unlock(424242)", &[]).await.unwrap().get::<_, bool>(0), "a releases its own lock");
    assert!(b.query_one("SELECT pg_try_advisory_lock(424242)", &[]).await.unwrap().get::<_, bool>(0), "b takes it once a released it");
    // b now holds it; when b leaves, its connection is cleaned and the lock is gone.
    drop(b);
    let c = connect(&p).await;
    let free = eventually(10, || {
        let c = &c;
        async move {
            let got: bool = c.query_one("SELECT pg_try_advisory_lock(424242)", &[]).await.unwrap().get(0);
            got
        }
    })
    .await;
    assert!(free, "the lock of a client that left is still held on a pooled connection");
    p.stop().await;
}

// ---- 5. A cancel never reaches the wrong client ----
