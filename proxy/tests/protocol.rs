//! Protocol fidelity: the simple and extended query protocols behave through the proxy exactly as
//! they do on a direct connection to the same PostgreSQL, message for message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::{backend_gone, direct_url, fe, raw_session, read_to_close, same_raw_exchange, tags, Proxy};
use futures_util::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio_postgres::{Client, SimpleQueryMessage};

fn render(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(r) => format!("row {:?}", (0..r.len()).map(|i| r.get(i)).collect::<Vec<_>>()),
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(cols) => {
                format!("desc {:?}", cols.iter().map(|c| c.name()).collect::<Vec<_>>())
            }
            _ => "other".to_string(),
        })
        .collect()
}

async fn pair(proxy: &Proxy, db: &str) -> (Client, Client) {
    (test_support::connect(&direct_url(db)).await, test_support::connect(&proxy.url(db)).await)
}

fn db_error(e: &tokio_postgres::Error) -> &tokio_postgres::error::DbError {
    e.as_db_error().unwrap_or_else(|| panic!("expected a server error, got {e}"))
}

#[tokio::test]
async fn simple_query_multi_statement_strings_match_direct() {
    let proxy = Proxy::start(&[]).await;
    let (direct, via) = pair(&proxy, "postgres").await;
    let script = "CREATE TEMP TABLE ms (a int, b text); \
                  INSERT INTO ms VALUES (1, 'one'), (2, NULL), (3, 'three'); \
                  SELECT * FROM ms ORDER BY a; \
                  UPDATE ms SET a = a * 10 WHERE a > 1; \
                  SELECT a, b || '!' AS excl, NULL AS n FROM ms ORDER BY a; \
                  SELECT; \
                  DELETE FROM ms WHERE a = 1; \
                  SELECT count(*) FROM ms";
    let d = render(&direct.simple_query(script).await.expect("direct"));
    let v = render(&via.simple_query(script).await.expect("proxy"));
    assert_eq!(d, v, "multi-statement simple query output differs");
    assert!(d.len() > 15, "the script produced output: {d:?}");

    // An error in the middle: the earlier statements' results arrive, the later ones never run,
    // and the implicit transaction is rolled back as a whole.
    for c in [&direct, &via] {
        c.batch_execute("CREATE TEMP TABLE mid (a int)").await.expect("create");
    }
    let bad = "INSERT INTO mid VALUES (1); SELECT 1/0; INSERT INTO mid VALUES (2)";
    let de = direct.simple_query(bad).await.expect_err("direct must fail");
    let ve = via.simple_query(bad).await.expect_err("proxy must fail");
    assert_eq!(db_error(&de).code().code(), "22012");
    assert_eq!(format!("{:?}", db_error(&de)), format!("{:?}", db_error(&ve)));
    let count = "SELECT count(*) FROM mid";
    assert_eq!(render(&direct.simple_query(count).await.unwrap()), render(&via.simple_query(count).await.unwrap()));
    assert!(render(&via.simple_query(count).await.unwrap()).contains(&r#"row [Some("0")]"#.to_string()));

    // The same at message level: per-statement results, then one ErrorResponse, then Z.
    let mut bytes = fe::query("CREATE TEMP TABLE m (a int)");
    bytes.extend(fe::query("INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)"));
    bytes.extend(fe::query("SELECT count(*) FROM m"));
    bytes.extend(fe::query(""));
    let msgs = same_raw_exchange(&proxy, &bytes, 4, "error mid-string").await;
    assert_eq!(tags(&msgs), "CZCEZTDCZIZ");
    proxy.stop().await;
}

#[tokio::test]
async fn named_prepared_statements_are_reused_and_describe_matches() {
    let proxy = Proxy::start(&[]).await;
    let (direct, via) = pair(&proxy, "postgres").await;
    let sql = "SELECT relname, $1::int4 * 2 AS doubled, $2::text[] AS arr, $3::numeric(10,2) AS money, \
               $4::varchar(7) AS v FROM pg_class WHERE oid = 'pg_class'::regclass";
    let ds = direct.prepare(sql).await.expect("direct prepare");
    let vs = via.prepare(sql).await.expect("proxy prepare");
    assert_eq!(ds.params(), vs.params(), "ParameterDescription differs");
    let cols = |s: &tokio_postgres::Statement| {
        s.columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone(), c.table_oid(), c.column_id(), c.type_modifier()))
            .collect::<Vec<_>>()
    };
    assert_eq!(cols(&ds), cols(&vs), "RowDescription differs");
    assert_eq!(vs.columns().len(), 5);
    assert_eq!(vs.params().len(), 4);

    for i in 0..200i32 {
        let arr = vec![Some(format!("e{i}")), None];
        let dec = format!("{i}.5");
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&i, &arr, &Dummy(&dec), &"abc"];
        let d = direct.query_one(&ds, &params).await.expect("direct exec");
        let v = via.query_one(&vs, &params).await.expect("proxy exec");
        assert_eq!(v.get::<_, i32>(1), i * 2);
        assert_eq!(d.get::<_, i32>(1), v.get::<_, i32>(1));
        assert_eq!(d.get::<_, Vec<Option<String>>>(2), v.get::<_, Vec<Option<String>>>(2));
        assert_eq!(v.get::<_, Vec<Option<String>>>(2), arr);
        assert_eq!(d.get::<_, String>(4), v.get::<_, String>(4));
    }

    // Describe of statement and portal at message level.
    let mut bytes = fe::parse("st1", "SELECT $1::int8 + 1 AS n, $2::text AS t", &[]);
    bytes.extend(fe::describe(b'S', "st1"));
    bytes.extend(fe::bind("p1", "st1", &[Some("41"), None]));
    bytes.extend(fe::describe(b'P', "p1"));
    bytes.extend(fe::execute("p1", 0));
    bytes.extend(fe::sync());
    let msgs = same_raw_exchange(&proxy, &bytes, 1, "describe").await;
    assert_eq!(tags(&msgs), "1tT2TDCZ");
    proxy.stop().await;
}

/// Numeric as text: tokio-postgres has no built-in numeric ToSql, so send it in text format.
#[derive(Debug)]
struct Dummy<'a>(&'a str);
impl tokio_postgres::types::ToSql for Dummy<'_> {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
    fn encode_format(&self, _: &tokio_postgres::types::Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }
    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn unnamed_statements_and_portals_with_row_limits() {
    let proxy = Proxy::start(&[]).await;
    let (mut direct, mut via) = pair(&proxy, "postgres").await;
    // query_typed: Parse of the unnamed statement, Bind, Describe portal, Execute, Sync in one go.
    for i in 0..50i64 {
        let sql = "SELECT $1::int8 * 3, md5($1::text)";
        let d = direct.query_typed(sql, &[(&i, tokio_postgres::types::Type::INT8)]).await.expect("direct");
        let v = via.query_typed(sql, &[(&i, tokio_postgres::types::Type::INT8)]).await.expect("proxy");
        assert_eq!(v[0].get::<_, i64>(0), i * 3);
        assert_eq!(d[0].get::<_, String>(1), v[0].get::<_, String>(1));
    }

    async fn chunks(c: &mut Client) -> Vec<Vec<(i32, String)>> {
        let tx = c.transaction().await.expect("begin");
        let st = tx.prepare("SELECT g, repeat('y', g) FROM generate_series(1, 10) g").await.expect("prepare");
        let portal = tx.bind(&st, &[]).await.expect("bind");
        let mut out = Vec::new();
        loop {
            let rows = tx.query_portal(&portal, 3).await.expect("execute portal");
            if rows.is_empty() {
                break;
            }
            out.push(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
        }
        // A second portal over the same statement, interleaved with the first's end.
        let p2 = tx.bind(&st, &[]).await.expect("bind 2");
        let first = tx.query_portal(&p2, 4).await.expect("p2");
        out.push(first.iter().map(|r| (r.get(0), r.get(1))).collect());
        tx.commit().await.expect("commit");
        out
    }
    let d = chunks(&mut direct).await;
    let v = chunks(&mut via).await;
    assert_eq!(d, v);
    assert_eq!(v.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1, 4]);

    // Message level: PortalSuspended after each limited Execute, then CommandComplete.
    let mut bytes = fe::query("BEGIN");
    bytes.extend(fe::parse("", "SELECT generate_series(1, 5)", &[]));
    bytes.extend(fe::bind("cur", "", &[]));
    for _ in 0..3 {
        bytes.extend(fe::execute("cur", 2));
    }
    bytes.extend(fe::sync());
    bytes.extend(fe::query("COMMIT"));
    let msgs = same_raw_exchange(&proxy, &bytes, 3, "portal row limits").await;
    assert_eq!(tags(&msgs), "CZ12DDsDDsDCZCZ");
    proxy.stop().await;
}

#[tokio::test]
async fn pipelined_batches_and_errors_inside_a_pipeline() {
    let proxy = Proxy::start(&[]).await;
    let (direct, via) = pair(&proxy, "postgres").await;
    for c in [&direct, &via] {
        let st = c.prepare("SELECT $1::int8 + 1, repeat('z', ($1 % 50)::int)").await.expect("prepare");
        // All 300 Bind/Execute/Sync go out before the first answer is read.
        let futs = (0..300i64).map(|i| {
            let st = &st;
            async move { (i, c.query_one(st, &[&i]).await) }
        });
        for (i, r) in join_all(futs).await {
            let r = r.expect("pipelined query");
            assert_eq!(r.get::<_, i64>(0), i + 1);
            assert_eq!(r.get::<_, String>(1).len() as i64, i % 50);
        }
    }

    // An error in the middle of a pipeline: only that statement fails (each has its own Sync).
    async fn run(c: &Client) -> Vec<Result<i32, String>> {
        let sqls = ["SELECT 1", "SELECT 2", "SELECT 1/0", "SELECT 4", "SELECT 'x'::int", "SELECT 6"];
        join_all(
            sqls.iter()
                .map(|s| async move { c.query_one(*s, &[]).await.map(|r| r.get::<_, i32>(0)).map_err(|e| format!("{:?}", db_error(&e))) }),
        )
        .await
    }
    let d = run(&direct).await;
    let v = run(&via).await;
    assert_eq!(d, v);
    assert!(matches!(v[2], Err(ref e) if e.contains("22012")), "{v:?}");
    assert_eq!(v[5], Ok(6));

    // Message level: after an error everything up to Sync is skipped, then the next batch runs.
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
    let msgs = same_raw_exchange(&proxy, &bytes, 2, "error inside a pipeline").await;
    // Bind already fails: the unnamed statement is planned with the parameter value (1/0 folded).
    assert_eq!(tags(&msgs), "1EZ12DCZ");
    proxy.stop().await;
}

#[tokio::test]
async fn close_statement_and_portal() {
    let proxy = Proxy::start(&[]).await;
    let (direct, via) = pair(&proxy, "postgres").await;
    let count = "SELECT count(*) FROM pg_prepared_statements";
    for c in [&direct, &via] {
        assert_eq!(render(&c.simple_query(count).await.unwrap())[1], r#"row [Some("0")]"#);
        let a = c.prepare("SELECT 1").await.unwrap();
        let b = c.prepare("SELECT 2").await.unwrap();
        let _keep = c.prepare("SELECT 3").await.unwrap();
        assert_eq!(render(&c.simple_query(count).await.unwrap())[1], r#"row [Some("3")]"#);
        drop(a); // Close 'S' + Sync
        drop(b);
        assert_eq!(render(&c.simple_query(count).await.unwrap())[1], r#"row [Some("1")]"#);
    }
    let mut bytes = fe::query("BEGIN");
    bytes.extend(fe::parse("s", "SELECT generate_series(1, 3)", &[]));
    bytes.extend(fe::bind("p", "s", &[]));
    bytes.extend(fe::execute("p", 1));
    bytes.extend(fe::close(b'P', "p"));
    bytes.extend(fe::execute("p", 1)); // portal is gone: 34000
    bytes.extend(fe::sync());
    bytes.extend(fe::query("ROLLBACK"));
    bytes.extend(fe::close(b'S', "s"));
    bytes.extend(fe::close(b'S', "never-existed")); // closing a missing name is not an error
    bytes.extend(fe::sync());
    bytes.extend(fe::query("SELECT count(*) FROM pg_prepared_statements"));
    let msgs = same_raw_exchange(&proxy, &bytes, 5, "close").await;
    assert_eq!(tags(&msgs), "CZ12Ds3EZCZ33ZTDCZ");
    proxy.stop().await;
}

#[tokio::test]
async fn terminate_releases_the_upstream_backend() {
    let proxy = Proxy::start(&[]).await;
    // tokio-postgres sends Terminate when the client is dropped.
    let c = test_support::connect(&proxy.url("postgres")).await;
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    assert!(!backend_gone(pid, 0).await, "backend {pid} is there while connected");
    drop(c);
    assert!(backend_gone(pid, 5).await, "backend {pid} still in pg_stat_activity 5 s after Terminate");

    // Raw: an explicit Terminate, after which the proxy closes the client connection.
    let mut s = raw_session(proxy.addr).await;
    s.write_all(&fe::query("SELECT pg_backend_pid()")).await.unwrap();
    let msgs = common::read_until_ready(&mut s, 1).await;
    let (_, row) = msgs.iter().find(|(t, _)| *t == b'D').expect("DataRow");
    let pid: i32 = std::str::from_utf8(&row[6..]).unwrap().parse().unwrap();
    s.write_all(&fe::terminate()).await.unwrap();
    let rest = read_to_close(&mut s).await;
    assert!(rest.is_empty(), "nothing after Terminate: {rest:?}");
    assert!(backend_gone(pid, 5).await, "backend {pid} still in pg_stat_activity 5 s after raw Terminate");
    proxy.stop().await;
}

#[tokio::test]
async fn transaction_status_sequences() {
    let proxy = Proxy::start(&[]).await;
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
    let msgs = same_raw_exchange(&proxy, &bytes, stmts.len(), "transaction status").await;
    let statuses: String = msgs.iter().filter(|(t, _)| *t == b'Z').map(|(_, b)| b[0] as char).collect();
    assert_eq!(statuses, "TEEITTETTII");

    // Through tokio-postgres: aborted transaction errors, rollback recovers.
    let (direct, via) = pair(&proxy, "postgres").await;
    for c in [&direct, &via] {
        c.batch_execute("BEGIN").await.unwrap();
        let e = c.simple_query("SELECT 1/0").await.unwrap_err();
        assert_eq!(db_error(&e).code().code(), "22012");
        let e = c.simple_query("SELECT 1").await.unwrap_err();
        assert_eq!(db_error(&e).code().code(), "25P02");
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(c.query_one("SELECT 7", &[]).await.unwrap().get::<_, i32>(0), 7);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn error_responses_carry_every_field() {
    let proxy = Proxy::start(&[]).await;
    let url = test_support::postgres().fresh_database("proto_errors");
    let setup = test_support::connect(&url).await;
    setup
        .batch_execute(
            "CREATE SCHEMA app; \
             CREATE TABLE app.acct (id int PRIMARY KEY, email text NOT NULL UNIQUE, \
                                    balance int CONSTRAINT balance_nonneg CHECK (balance >= 0)); \
             INSERT INTO app.acct VALUES (1, 'a@example.com', 10);",
        )
        .await
        .unwrap();
    let (direct, via) = pair(&proxy, "proto_errors").await;
    let cases = [
        "INSERT INTO app.acct VALUES (2, 'a@example.com', 0)",
        "INSERT INTO app.acct VALUES (3, 'b@example.com', -5)",
        "INSERT INTO app.acct VALUES (4, NULL, 1)",
        "SELECT emial FROM app.acct",
        "SELECT * FROM app.nope",
        "DO $$ BEGIN RAISE EXCEPTION 'custom %', 42 USING ERRCODE = 'P0099', DETAIL = 'the detail', \
         HINT = 'the hint', COLUMN = 'col', CONSTRAINT = 'con', DATATYPE = 'typ', TABLE = 'tab', \
         SCHEMA = 'sch'; END $$",
    ];
    async fn run(c: &Client, sql: &str, extended: bool) -> tokio_postgres::Error {
        let r = if extended { c.execute(sql, &[]).await.map(|_| ()) } else { c.batch_execute(sql).await };
        r.expect_err(sql)
    }
    let mut seen = Vec::new();
    for sql in cases {
        for extended in [false, true] {
            let de = run(&direct, sql, extended).await;
            let ve = run(&via, sql, extended).await;
            let (d, v) = (db_error(&de), db_error(&ve));
            assert_eq!(d.severity(), v.severity(), "{sql}");
            assert_eq!(d.parsed_severity(), v.parsed_severity(), "{sql}");
            assert_eq!(d.code(), v.code(), "{sql}");
            assert_eq!(d.message(), v.message(), "{sql}");
            assert_eq!(d.detail(), v.detail(), "{sql}");
            assert_eq!(d.hint(), v.hint(), "{sql}");
            assert_eq!(format!("{:?}", d.position()), format!("{:?}", v.position()), "{sql}");
            assert_eq!(d.where_(), v.where_(), "{sql}");
            assert_eq!(d.schema(), v.schema(), "{sql}");
            assert_eq!(d.table(), v.table(), "{sql}");
            assert_eq!(d.column(), v.column(), "{sql}");
            assert_eq!(d.datatype(), v.datatype(), "{sql}");
            assert_eq!(d.constraint(), v.constraint(), "{sql}");
            assert_eq!(d.file(), v.file(), "{sql}");
            assert_eq!(d.line(), v.line(), "{sql}");
            assert_eq!(d.routine(), v.routine(), "{sql}");
            assert_eq!(format!("{d:?}"), format!("{v:?}"), "{sql}");
            seen.push(format!("{v:?}"));
        }
    }
    // The cases really exercise the fields (so the comparison above is not vacuous).
    let all = seen.join("\n");
    for needle in [
        "23505",
        "Key (email)=(a@example.com) already exists",
        "acct_email_key",
        "23514",
        "balance_nonneg",
        "23502",
        "column: Some(\"email\")",
        "schema: Some(\"app\")",
        "table: Some(\"acct\")",
        "42703",
        "Perhaps you meant",
        "Original(8)",
        "42P01",
        "P0099",
        "the detail",
        "the hint",
        "datatype: Some(\"typ\")",
        "where_: Some(\"PL/pgSQL",
    ] {
        assert!(all.contains(needle), "no {needle:?} in:\n{all}");
    }
    // And the raw ErrorResponse frames are identical, byte for byte.
    let mut bytes = fe::query("SELECT relnme FROM pg_class");
    bytes.extend(fe::query(cases[5]));
    bytes.extend(fe::parse("", "SELECT 1 +", &[]));
    bytes.extend(fe::sync());
    let msgs = same_raw_exchange(&proxy, &bytes, 3, "ErrorResponse frames").await;
    assert_eq!(tags(&msgs), "EZEZEZ");
    drop(setup);
    proxy.stop().await;
}

#[tokio::test]
async fn terminate_closes_the_client_only_when_the_coordinator_does() {
    use common::pg_addr;
    let proxy = Proxy::start(&[]).await;
    // A statement and Terminate in one write: PostgreSQL answers the statement, then closes.
    // A relay that closed the client's side on seeing Terminate would lose that answer.
    let mut bytes = fe::query("SELECT pg_sleep(0.3), 42");
    bytes.extend_from_slice(&fe::terminate());
    let mut replies = Vec::new();
    for addr in [pg_addr(), proxy.addr] {
        let mut s = raw_session(addr).await;
        s.write_all(&bytes).await.expect("write");
        replies.push(read_to_close(&mut s).await);
    }
    let tags_of = |b: &[u8]| {
        let mut t = String::new();
        let mut rest = b;
        while rest.len() >= 5 {
            let len = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            t.push(rest[0] as char);
            rest = &rest[(len + 1).min(rest.len())..];
        }
        t
    };
    assert_eq!(tags_of(&replies[0]), "TDCZ", "direct");
    assert_eq!(tags_of(&replies[1]), tags_of(&replies[0]), "through the proxy, as directly");
    assert_eq!(replies[1], replies[0]);
    proxy.stop().await;
}
