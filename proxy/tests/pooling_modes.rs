//! Every pool mode (`off`, `session`, `transaction`; transaction with routing on too) against a
//! real PostgreSQL, with real clients: the simple, extended (unnamed) and prepared protocols,
//! COPY both ways, cancel; transaction semantics in transaction mode. The protocol, COPY,
//! notice and cache suites' scenarios re-run pooled: pooling_protocol.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::pool::{code, connect, direct, pid, pooled_with, simple_value, within, MODES};
use common::{fe, same_raw_exchange, tags, Proxy};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

async fn each_mode<F, Fut>(what: &str, size: &str, f: F)
where
    F: Fn(Proxy, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (mode, routed) in MODES {
        let label = format!("{what} [pool.mode = {mode}, routing {}]", if routed { "on" } else { "off" });
        let p = pooled_with(mode, size, routed, &[]).await;
        f(p, label).await;
    }
}

fn rows(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

// ---- 1. Every mode × protocol ----

#[tokio::test]
async fn simple_query_in_every_mode() {
    each_mode("simple query", "2", |p, label| async move {
        let c = connect(&p).await;
        let r = c
            .simple_query("SELECT 1 AS a, 'x' AS b; SELECT g FROM generate_series(1, 3) g")
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            rows(&r),
            vec![vec![Some("1".into()), Some("x".into())], vec![Some("1".into())], vec![Some("2".into())], vec![Some("3".into())]],
            "{label}"
        );
        let e = c.simple_query("SELECT 1/0").await.expect_err("division by zero");
        assert_eq!(code(&e), "22012", "{label}");
        assert_eq!(simple_value(&c, "SELECT 'after error'").await.as_deref(), Some("after error"), "{label}");
        for i in 0..50 {
            assert_eq!(simple_value(&c, &format!("SELECT {i} * 2")).await, Some((i * 2).to_string()), "{label}");
        }
        p.stop().await;
    })
    .await;
}

#[tokio::test]
async fn extended_unnamed_in_every_mode() {
    each_mode("extended unnamed", "2", |p, label| async move {
        let c = connect(&p).await;
        for i in 0..50i64 {
            let r =
                c.query_typed("SELECT $1::int8 * 3, md5($1::text)", &[(&i, Type::INT8)]).await.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(r[0].get::<_, i64>(0), i * 3, "{label}");
        }
        // Raw: Parse/Bind/Execute of the unnamed statement, then Sync, and an error batch.
        let mut bytes = fe::parse("", "SELECT $1::int + 1", &[]);
        bytes.extend(fe::bind("", "", &[Some("41")]));
        bytes.extend(fe::execute("", 0));
        bytes.extend(fe::sync());
        bytes.extend(fe::parse("", "SELECT 1/$1::int", &[]));
        bytes.extend(fe::bind("", "", &[Some("0")]));
        bytes.extend(fe::execute("", 0));
        bytes.extend(fe::sync());
        let msgs = same_raw_exchange(&p, &bytes, 2, &label).await;
        assert_eq!(tags(&msgs), "12DCZ1EZ", "{label}");
        p.stop().await;
    })
    .await;
}

#[tokio::test]
async fn prepared_named_statement_one_client_in_every_mode() {
    each_mode("prepared", "2", |p, label| async move {
        let c = connect(&p).await;
        let st = c.prepare("SELECT $1::int4 + 1, $2::text").await.unwrap_or_else(|e| panic!("{label}: prepare: {e}"));
        for i in 0..100i32 {
            let r = c.query_one(&st, &[&i, &format!("t{i}")]).await.unwrap_or_else(|e| panic!("{label}: execute {i}: {e}"));
            assert_eq!((r.get::<_, i32>(0), r.get::<_, String>(1)), (i + 1, format!("t{i}")), "{label}");
        }
        // The statement is still usable inside a transaction and after it.
        c.batch_execute("BEGIN").await.unwrap();
        assert_eq!(c.query_one(&st, &[&1i32, &"in"]).await.unwrap_or_else(|e| panic!("{label}: in tx: {e}")).get::<_, i32>(0), 2);
        c.batch_execute("COMMIT").await.unwrap();
        assert_eq!(c.query_one(&st, &[&2i32, &"out"]).await.unwrap_or_else(|e| panic!("{label}: after tx: {e}")).get::<_, i32>(0), 3);
        drop(st);
        assert_eq!(simple_value(&c, "SELECT 5").await.as_deref(), Some("5"), "{label}");
        p.stop().await;
    })
    .await;
}

async fn copy_out(c: &Client, sql: &str) -> Result<Vec<u8>, tokio_postgres::Error> {
    let stream = c.copy_out(sql).await?;
    let mut stream = Box::pin(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn copy_in(c: &Client, sql: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>(sql).await?;
    let mut sink = Box::pin(sink);
    for ch in data.chunks(1000) {
        sink.send(Bytes::copy_from_slice(ch)).await?;
    }
    sink.as_mut().finish().await
}

#[tokio::test]
async fn copy_in_and_out_in_every_mode() {
    let d = direct().await;
    d.batch_execute("DROP TABLE IF EXISTS pm_copy; CREATE TABLE pm_copy (mode text, id int, t text)").await.unwrap();
    each_mode("copy", "2", |p, label| async move {
        let c = connect(&p).await;
        let mut data = String::new();
        for i in 0..3000 {
            data.push_str(&format!("{label}\t{i}\tline {i}\\twith tab\n"));
        }
        let n = within(30, &label, copy_in(&c, "COPY pm_copy FROM STDIN", data.as_bytes()))
            .await
            .unwrap_or_else(|e| panic!("{label}: copy in: {e}"));
        assert_eq!(n, 3000, "{label}");
        let back = within(30, &label, copy_out(&c, &format!("COPY (SELECT * FROM pm_copy WHERE mode = '{label}' ORDER BY id) TO STDOUT")))
            .await
            .unwrap_or_else(|e| panic!("{label}: copy out: {e}"));
        assert_eq!(String::from_utf8_lossy(&back), data, "{label}");
        // A COPY that fails on bad data leaves the client usable.
        let e = copy_in(&c, "COPY pm_copy FROM STDIN", b"x\tnot-a-number\ty\n").await.expect_err("bad data");
        assert_eq!(code(&e), "22P02", "{label}");
        assert_eq!(simple_value(&c, &format!("SELECT count(*) FROM pm_copy WHERE mode = '{label}'")).await.as_deref(), Some("3000"));
        // COPY inside a transaction block.
        c.batch_execute("BEGIN").await.unwrap();
        copy_in(&c, "COPY pm_copy FROM STDIN", format!("{label}-tx\t1\ta\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{label}: copy in tx: {e}"));
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(simple_value(&c, &format!("SELECT count(*) FROM pm_copy WHERE mode = '{label}-tx'")).await.as_deref(), Some("0"));
        p.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cancel_in_every_mode() {
    each_mode("cancel", "2", |p, label| async move {
        let c = connect(&p).await;
        let token = c.cancel_token();
        let c = std::sync::Arc::new(c);
        let c2 = std::sync::Arc::clone(&c);
        let sleeper = tokio::spawn(async move { c2.simple_query("SELECT pg_sleep(30)").await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        token.cancel_query(NoTls).await.unwrap_or_else(|e| panic!("{label}: send cancel: {e}"));
        let r = tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .unwrap_or_else(|_| panic!("{label}: pg_sleep(30) not cancelled within 10 s"))
            .unwrap();
        let e = r.expect_err("cancelled");
        assert_eq!(code(&e), "57014", "{label}");
        assert!(started.elapsed() < Duration::from_secs(10), "{label}");
        for i in 0..5 {
            assert_eq!(
                simple_value(&c, &format!("SELECT {i}")).await,
                Some(i.to_string()),
                "{label}: client keeps working after the cancel"
            );
        }
        // Twice on the same client.
        let c3 = std::sync::Arc::clone(&c);
        let sleeper = tokio::spawn(async move { c3.query("SELECT pg_sleep(30)", &[]).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), sleeper).await.unwrap_or_else(|_| panic!("{label}: second cancel")).unwrap();
        assert_eq!(code(&r.expect_err("cancelled")), "57014", "{label}");
        assert_eq!(simple_value(&c, "SELECT 'ok'").await.as_deref(), Some("ok"), "{label}");
        p.stop().await;
    })
    .await;
}

// ---- 2. Transaction semantics in transaction mode ----

#[tokio::test]
async fn a_transaction_block_stays_on_one_backend() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "4", routed, &[]).await;
        let a = connect(&p).await;
        let others: Vec<Client> = join_all((0..6).map(|_| connect(&p))).await;
        for round in 0..10 {
            a.batch_execute("BEGIN").await.unwrap();
            let first = pid(&a).await;
            // Other clients' autocommit statements run meanwhile on the other connections.
            let busy = join_all(others.iter().map(|o| o.simple_query("SELECT pg_sleep(0.01)"))).await;
            assert!(busy.iter().all(Result::is_ok), "{busy:?}");
            for _ in 0..5 {
                assert_eq!(
                    pid(&a).await,
                    first,
                    "round {round} (routing {routed}): a statement of the open transaction ran on another backend"
                );
            }
            a.batch_execute("COMMIT").await.unwrap();
        }
        p.stop().await;
    }
}

#[tokio::test]
async fn commit_rollback_and_error_then_rollback() {
    let d = direct().await;
    d.batch_execute("DROP TABLE IF EXISTS pm_tx; CREATE TABLE pm_tx (id int primary key, v text)").await.unwrap();
    for routed in [false, true] {
        d.batch_execute("TRUNCATE pm_tx").await.unwrap();
        let p = pooled_with("transaction", "2", routed, &[]).await;
        let a = connect(&p).await;
        let b = connect(&p).await;
        // Committed.
        a.batch_execute("BEGIN; INSERT INTO pm_tx VALUES (1, 'one')").await.unwrap();
        a.batch_execute("INSERT INTO pm_tx VALUES (2, 'two')").await.unwrap();
        assert_eq!(simple_value(&b, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("0"), "uncommitted rows are not visible to b");
        a.batch_execute("COMMIT").await.unwrap();
        assert_eq!(simple_value(&b, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("2"));
        // Rolled back.
        a.batch_execute("BEGIN").await.unwrap();
        a.batch_execute("INSERT INTO pm_tx VALUES (3, 'three')").await.unwrap();
        assert_eq!(simple_value(&a, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("3"));
        a.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(simple_value(&a, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("2"));
        // An error inside: the block is aborted until ROLLBACK, then all is well.
        a.batch_execute("BEGIN").await.unwrap();
        a.batch_execute("INSERT INTO pm_tx VALUES (4, 'four')").await.unwrap();
        let e = a.batch_execute("INSERT INTO pm_tx VALUES (1, 'dup')").await.expect_err("duplicate key");
        assert_eq!(code(&e), "23505");
        let e = a.simple_query("SELECT 1").await.expect_err("aborted block");
        assert_eq!(code(&e), "25P02");
        // b is not affected by a's aborted block.
        assert_eq!(simple_value(&b, "SELECT 'b fine'").await.as_deref(), Some("b fine"));
        a.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(simple_value(&a, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("2"));
        // The extended protocol's transaction object.
        let mut a = a;
        let tx = a.transaction().await.unwrap();
        tx.execute("INSERT INTO pm_tx VALUES ($1, $2)", &[&5i32, &"five"]).await.unwrap();
        let e = tx.execute("INSERT INTO pm_tx VALUES ($1, $2)", &[&5i32, &"again"]).await.expect_err("dup");
        assert_eq!(code(&e), "23505");
        tx.rollback().await.unwrap();
        assert_eq!(simple_value(&a, "SELECT count(*) FROM pm_tx").await.as_deref(), Some("2"));
        p.stop().await;
    }
}

#[tokio::test]
async fn autocommit_statements_of_two_clients_share_one_backend() {
    for routed in [false, true] {
        let p = pooled_with("transaction", "1", routed, &[]).await;
        let a = connect(&p).await;
        let b = connect(&p).await;
        let first = pid(&a).await;
        for _ in 0..20 {
            assert_eq!(pid(&a).await, first);
            assert_eq!(pid(&b).await, first, "pool.size 1: b runs on the same backend as a");
        }
        // Concurrent statements queue for the one connection and all succeed.
        let r =
            join_all((0..40).map(|i| {
                let c = if i % 2 == 0 { &a } else { &b };
                async move {
                    c.query_one("SELECT $1::int * 10, pg_backend_pid()", &[&i]).await.map(|r| (r.get::<_, i32>(0), r.get::<_, i32>(1)))
                }
            }))
            .await;
        for (i, r) in r.into_iter().enumerate() {
            let (v, backend) = r.unwrap();
            assert_eq!((v, backend), (i as i32 * 10, first));
        }
        p.stop().await;
    }
}
