//! The existing suites' scenarios (protocol.rs, copy.rs, async_messages.rs, cache.rs) re-run
//! through transaction pooling: the same messages as a direct connection, byte for byte where
//! the scenario compares them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::pool::{code, connect, direct, pid, pooled, pooled_with, simple_value, within, MODES};
use common::{fe, same_raw_exchange, tags};
use futures_util::future::join_all;
use tokio_postgres::SimpleQueryMessage;

// ---- 8. Scenarios of the existing suites (protocol.rs, copy.rs) in transaction mode ----

fn render(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(r) => format!("row {:?}", (0..r.len()).map(|i| r.get(i)).collect::<Vec<_>>()),
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(cols) => format!("desc {:?}", cols.iter().map(|c| c.name()).collect::<Vec<_>>()),
            _ => "other".to_string(),
        })
        .collect()
}

#[tokio::test]
async fn pooled_protocol_multi_statement_strings_match_direct() {
    let p = pooled("transaction", "3").await;
    let d = direct().await;
    let via = connect(&p).await;
    let script = "CREATE TEMP TABLE ms (a int, b text); \
                  INSERT INTO ms VALUES (1, 'one'), (2, NULL), (3, 'three'); \
                  SELECT * FROM ms ORDER BY a; \
                  UPDATE ms SET a = a * 10 WHERE a > 1; \
                  SELECT a, b || '!' AS excl, NULL AS n FROM ms ORDER BY a; \
                  SELECT; DELETE FROM ms WHERE a = 1; SELECT count(*) FROM ms";
    assert_eq!(render(&d.simple_query(script).await.unwrap()), render(&via.simple_query(script).await.unwrap()));
    let mut bytes = fe::query("CREATE TEMP TABLE m (a int)");
    bytes.extend(fe::query("INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)"));
    bytes.extend(fe::query("SELECT count(*) FROM m"));
    bytes.extend(fe::query(""));
    let msgs = same_raw_exchange(&p, &bytes, 4, "error mid-string, pooled").await;
    assert_eq!(tags(&msgs), "CZCEZTDCZIZ");
    p.stop().await;
}

#[tokio::test]
async fn pooled_protocol_portals_pipelines_and_close() {
    let p = pooled("transaction", "3").await;
    // Portal row limits inside a block.
    let mut bytes = fe::query("BEGIN");
    bytes.extend(fe::parse("", "SELECT generate_series(1, 5)", &[]));
    bytes.extend(fe::bind("cur", "", &[]));
    for _ in 0..3 {
        bytes.extend(fe::execute("cur", 2));
    }
    bytes.extend(fe::sync());
    bytes.extend(fe::query("COMMIT"));
    let msgs = same_raw_exchange(&p, &bytes, 3, "portal row limits, pooled").await;
    assert_eq!(tags(&msgs), "CZ12DDsDDsDCZCZ");
    // Error in a pipeline: skipped up to Sync, the next batch runs.
    let mut bytes = fe::parse("", "SELECT 1/$1::int", &[]);
    bytes.extend(fe::bind("", "", &[Some("0")]));
    bytes.extend(fe::execute("", 0));
    bytes.extend(fe::parse("", "SELECT 2", &[]));
    bytes.extend(fe::bind("", "", &[]));
    bytes.extend(fe::execute("", 0));
    bytes.extend(fe::sync());
    bytes.extend(fe::parse("", "SELECT 3", &[]));
    bytes.extend(fe::bind("", "", &[]));
    bytes.extend(fe::execute("", 0));
    bytes.extend(fe::sync());
    let msgs = same_raw_exchange(&p, &bytes, 2, "error inside a pipeline, pooled").await;
    assert_eq!(tags(&msgs), "1EZ12DCZ");
    // Close of portal and statement inside and after a block.
    let mut bytes = fe::query("BEGIN");
    bytes.extend(fe::parse("s", "SELECT generate_series(1, 3)", &[]));
    bytes.extend(fe::bind("p", "s", &[]));
    bytes.extend(fe::execute("p", 1));
    bytes.extend(fe::close(b'P', "p"));
    bytes.extend(fe::execute("p", 1));
    bytes.extend(fe::sync());
    bytes.extend(fe::query("ROLLBACK"));
    bytes.extend(fe::close(b'S', "s"));
    bytes.extend(fe::close(b'S', "never-existed"));
    bytes.extend(fe::sync());
    // The server connection also holds the statements the proxy prepared under its own names
    // for transaction pooling (docs/pooling.md): only the client's own are compared.
    bytes.extend(fe::query("SELECT count(*) FROM pg_prepared_statements WHERE name NOT LIKE 'citus\\_proxy\\_%'"));
    let msgs = same_raw_exchange(&p, &bytes, 5, "close, pooled").await;
    assert_eq!(tags(&msgs), "CZ12Ds3EZCZ33ZTDCZ");
    // 300 pipelined executions of one prepared statement from one client, with errors mixed in.
    let c = connect(&p).await;
    let st = c.prepare("SELECT $1::int8 + 1, repeat('z', ($1 % 50)::int)").await.unwrap();
    let res = join_all((0..300i64).map(|i| {
        let (c, st) = (&c, &st);
        async move { (i, c.query_one(st, &[&i]).await) }
    }))
    .await;
    for (i, r) in res {
        let r = r.unwrap_or_else(|e| panic!("pipelined {i}: {e}"));
        assert_eq!(r.get::<_, i64>(0), i + 1);
    }
    let sqls = ["SELECT 1", "SELECT 2", "SELECT 1/0", "SELECT 4", "SELECT 'x'::int", "SELECT 6"];
    let v = join_all(sqls.iter().map(|s| async { c.query_one(*s, &[]).await.map(|r| r.get::<_, i32>(0)).map_err(|e| code(&e)) })).await;
    assert_eq!(v, vec![Ok(1), Ok(2), Err("22012".into()), Ok(4), Err("22P02".into()), Ok(6)]);
    p.stop().await;
}

#[tokio::test]
async fn pooled_transaction_status_sequences() {
    let p = pooled("transaction", "2").await;
    let stmts = [
        "BEGIN",
        "SELECT 1/0",
        "SELECT 1",
        "ROLLBACK",
        "BEGIN",
        "SAVEPOINT a",
        "SELECT 1/0",
        "ROLLBACK TO a",
        "SELECT 1",
        "COMMIT",
        "SELECT 1",
    ];
    let mut bytes = Vec::new();
    for s in stmts {
        bytes.extend(fe::query(s));
    }
    let msgs = same_raw_exchange(&p, &bytes, stmts.len(), "transaction status, pooled").await;
    let statuses: String = msgs.iter().filter(|(t, _)| *t == b'Z').map(|(_, b)| b[0] as char).collect();
    assert_eq!(statuses, "TEEITTETTII");
    p.stop().await;
}

#[tokio::test]
async fn pooled_psql_copy_and_scripts() {
    let p = pooled("transaction", "2").await;
    let d = direct().await;
    d.batch_execute("DROP TABLE IF EXISTS pm_psql; CREATE TABLE pm_psql (id int, t text)").await.unwrap();
    let file = std::env::temp_dir().join(format!("pm_psql_{}.txt", std::process::id()));
    std::fs::write(&file, (0..500).map(|i| format!("{i}\trow {i}\n")).collect::<String>()).unwrap();
    let conninfo = p.conninfo("postgres");
    let (ok, out, err) = tokio::task::spawn_blocking({
        let conninfo = conninfo.clone();
        let file = file.clone();
        move || common::psql(&conninfo, &["-c", &format!("\\copy pm_psql FROM '{}'", file.display()), "-c", "SELECT count(*) FROM pm_psql"])
    })
    .await
    .unwrap();
    assert!(ok, "psql \\copy through transaction pooling: {err}");
    assert!(out.contains("500"), "{out}");
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        common::psql(&conninfo, &["-c", "BEGIN", "-c", "SET LOCAL work_mem = '7MB'", "-c", "SHOW work_mem", "-c", "COMMIT"])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("7MB"), "{out}");
    let _ = std::fs::remove_file(file);
    p.stop().await;
}

/// async_messages.rs's notices scenario, pooled: NoticeResponses arrive in order with their
/// results, and a SET reports its ParameterStatus to the client.
#[tokio::test]
async fn pooled_notices_and_parameter_status() {
    use common::{connect_observed, Seen};
    let notice = |m: &str| Seen::Notice { severity: "NOTICE".into(), code: "00000".into(), message: m.into() };
    for (mode, routed) in MODES {
        let p = pooled_with(mode, "2", routed, &[]).await;
        let o = connect_observed(&p.url("postgres")).await;
        o.client.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$").await.unwrap();
        o.mark("after DO");
        let r = o
            .client
            .simple_query(
                "DO $$ BEGIN RAISE NOTICE 'first'; END $$; SELECT 1; DO $$ BEGIN RAISE WARNING 'second'; RAISE NOTICE 'third'; END $$",
            )
            .await
            .unwrap();
        assert_eq!(r.len(), 5);
        o.mark("after multi");
        let rows = o.client.query("SELECT generate_series(1, $1)", &[&3i32]).await.unwrap();
        assert_eq!(rows.len(), 3);
        let seen = o.take();
        let expected = vec![
            notice("hello 42"),
            Seen::Mark("after DO".into()),
            notice("first"),
            Seen::Notice { severity: "WARNING".into(), code: "01000".into(), message: "second".into() },
            notice("third"),
            Seen::Mark("after multi".into()),
        ];
        assert_eq!(seen, expected, "pool.mode = {mode}, routing {routed}");
        o.client.batch_execute("SET application_name = 'reported'").await.unwrap();
        assert_eq!(o.parameter("application_name").as_deref(), Some("reported"), "pool.mode = {mode}: ParameterStatus after SET");
        p.stop().await;
    }
}

// ---- Routing and the result cache in pooled sessions (Citus fixture) ----

async fn ask(s: &mut tokio::net::TcpStream, bytes: Vec<u8>) -> Vec<common::RawMsg> {
    use tokio::io::AsyncWriteExt;
    s.write_all(&bytes).await.unwrap();
    common::read_until_ready(s, 1).await
}

fn first_row_text(msgs: &[common::RawMsg]) -> String {
    String::from_utf8_lossy(&msgs.iter().find(|m| m.0 == b'D').expect("a row").1).into_owned()
}

/// cache.rs's first scenario in transaction mode: hits are replayed byte for byte without a
/// server connection, writes through the pool invalidate, and a read inside a transaction
/// block sees the block's own write, never the cached answer.
#[tokio::test]
async fn pooled_cache_hits_invalidation_and_transactions() {
    let (p, _, db) = common::proxy_for(
        "pool_cache",
        &[("cache.tables", "users"), ("pool.mode", "transaction"), ("pool.size", "2"), ("auth.type", "trust")],
    )
    .await;
    let mut s = common::raw_session_on(p.addr, &db).await;
    let q = fe::query("SELECT username, email FROM users WHERE user_id = 42");
    let first = ask(&mut s, q.clone()).await;
    assert!(!first.iter().any(|m| m.0 == b'E'), "{first:?}");
    let second = ask(&mut s, q.clone()).await;
    assert_eq!(common::hits(&p), 1, "{:?}", common::stats(&p));
    assert_eq!(first, second);
    // A write through the pool (another client) invalidates.
    let c = common::pool::connect_db(&p, &db).await;
    c.execute("UPDATE users SET username = 'pooled-write' WHERE user_id = 42", &[]).await.unwrap();
    let third = ask(&mut s, q.clone()).await;
    assert!(first_row_text(&third).contains("pooled-write"), "{third:?}");
    // Inside a block: the block's own write is seen; after ROLLBACK the committed value.
    let _ = ask(&mut s, fe::query("BEGIN")).await;
    let _ = ask(&mut s, fe::query("UPDATE users SET username = 'in-the-block' WHERE user_id = 42")).await;
    let inside = ask(&mut s, q.clone()).await;
    assert!(first_row_text(&inside).contains("in-the-block"), "a read in the block after its write: {inside:?}");
    let _ = ask(&mut s, fe::query("ROLLBACK")).await;
    let after = ask(&mut s, q.clone()).await;
    assert!(first_row_text(&after).contains("pooled-write"), "after ROLLBACK: {after:?}");
    p.stop().await;
}

/// async_messages.rs's FunctionCall scenario in transaction mode, with another client sharing
/// the one server connection: raw FunctionCall, and psql's large objects (lo_* over
/// FunctionCall inside psql's own transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_function_call_and_large_objects() {
    let p = pooled("transaction", "1").await;
    let d = direct().await;
    let oid: u32 = d.query_one("SELECT 'int4pl'::regproc::oid", &[]).await.unwrap().get(0);
    let mut body = oid.to_be_bytes().to_vec();
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&2i16.to_be_bytes());
    for v in [40i32, 2] {
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(&1i16.to_be_bytes());
    let mut frame = vec![b'F'];
    frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut bytes = frame.clone();
    bytes.extend(fe::query("SELECT 1"));
    bytes.extend(frame);
    let msgs = same_raw_exchange(&p, &bytes, 3, "FunctionCall, pooled").await;
    assert_eq!(tags(&msgs), "VZTDCZVZ");
    assert_eq!(msgs[0].1, [0, 0, 0, 4, 0, 0, 0, 42]);

    // Another client keeps using the one connection meanwhile.
    let other = connect(&p).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                other.simple_query("SELECT 1").await.expect("the other client");
                n += 1;
            }
            n
        })
    };
    let dir = std::env::temp_dir().join(format!("citus-proxy-pool-lo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.join("src.bin"), &content).unwrap();
    let (ci, d2) = (p.conninfo("postgres"), dir.clone());
    let exported = tokio::task::spawn_blocking(move || {
        let imp = common::psql(&ci, &["-c", &format!("\\lo_import '{}'", d2.join("src.bin").display())]);
        assert!(imp.0, "\\lo_import through transaction pooling failed: {} {}", imp.1, imp.2);
        let oid: u32 = imp.1.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("no OID in {:?}", imp.1));
        let e = common::psql(&ci, &["-c", &format!("\\lo_export {oid} '{}'", d2.join("out.bin").display())]);
        assert!(e.0, "\\lo_export through transaction pooling failed: {} {}", e.1, e.2);
        let u = common::psql(&ci, &["-c", &format!("\\lo_unlink {oid}")]);
        assert!(u.0, "\\lo_unlink failed: {}", u.2);
        std::fs::read(d2.join("out.bin")).unwrap()
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = within(30, "the other client", hammer).await.unwrap();
    assert!(n > 0);
    assert!(exported == content, "large object round trip through transaction pooling changed the bytes");
    let _ = std::fs::remove_dir_all(&dir);
    p.stop().await;
}

/// Session mode: the client keeps its server connection, so session state (SET, temporary
/// tables, named statements) is its own across transactions while other clients come and go.
#[tokio::test]
async fn session_mode_keeps_session_state() {
    let p = pooled("session", "3").await;
    let a = connect(&p).await;
    let mine = pid(&a).await;
    a.batch_execute("SET TimeZone = 'Asia/Tokyo'; CREATE TEMP TABLE sess_keep (a int)").await.unwrap();
    let st = a.prepare("SELECT $1::int + 1").await.unwrap();
    for i in 0..5 {
        let other = connect(&p).await;
        assert_ne!(pid(&other).await, mine, "another client got a's session connection");
        other.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
        drop(other);
        a.batch_execute("BEGIN").await.unwrap();
        a.execute("INSERT INTO sess_keep VALUES ($1)", &[&i]).await.unwrap();
        a.batch_execute("COMMIT").await.unwrap();
        assert_eq!(a.query_one(&st, &[&i]).await.unwrap().get::<_, i32>(0), i + 1);
        assert_eq!(simple_value(&a, "SHOW TimeZone").await.as_deref(), Some("Asia/Tokyo"));
        assert_eq!(pid(&a).await, mine);
    }
    assert_eq!(simple_value(&a, "SELECT count(*) FROM sess_keep").await.as_deref(), Some("5"));
    p.stop().await;
}
