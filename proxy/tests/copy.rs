//! COPY through the proxy: FROM STDIN and TO STDOUT in text, csv and binary; byte-for-byte equal
//! to a direct connection; errors in the data; a client vanishing mid-COPY; psql's \copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::pin::Pin;

use bytes::Bytes;
use common::{backend_gone, backends, direct_conninfo, direct_url, eventually, fe, psql, Proxy};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_postgres::Client;

const DB: &str = "copy_db";

async fn copy_out(c: &Client, sql: &str) -> Vec<u8> {
    let stream = c.copy_out(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    let mut stream = Box::pin(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("copy out chunk"));
    }
    out
}

async fn copy_in(c: &Client, sql: &str, chunks: &[&[u8]]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>(sql).await?;
    let mut sink = Box::pin(sink);
    for ch in chunks {
        sink.send(Bytes::copy_from_slice(ch)).await?;
    }
    sink.as_mut().finish().await
}

/// Text-format rows with every escape COPY knows: tabs, newlines, backslashes, NULLs, unicode.
fn text_data() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..2000 {
        s.push_str(&format!("{i}\tline {i}\\twith tab\\nand newline \\\\ back 😀\t"));
        if i % 7 == 0 {
            s.push_str("\\N");
        } else {
            s.push_str(&format!("{{{i},{}}}", i * 2));
        }
        s.push('\n');
    }
    s.into_bytes()
}

fn csv_data() -> Vec<u8> {
    let mut s = String::from("id,t,arr\n");
    for i in 0..500 {
        s.push_str(&format!("{i},\"quoted \"\"{i}\"\", comma, and\nembedded\r\nnewlines\",{{{i}}}\n"));
    }
    s.push_str("9999,,\n");
    s.into_bytes()
}

fn ensure_db() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        test_support::postgres().fresh_database(DB);
    });
}

#[tokio::test]
async fn copy_round_trips_in_every_format() {
    ensure_db();
    let proxy = Proxy::start(&[]).await;
    let direct = test_support::connect(&direct_url(DB)).await;
    let via = test_support::connect(&proxy.url(DB)).await;
    direct
        .batch_execute(
            "CREATE TABLE rt_text (id int, t text, arr int[]); CREATE TABLE rt_csv (id int, t text, arr int[]); \
             CREATE TABLE rt_bin (id int, t text, arr int[]); CREATE TABLE rt_direct (id int, t text, arr int[]);",
        )
        .await
        .unwrap();

    // In through the proxy (in uneven chunks, splitting rows and characters), and direct.
    let data = text_data();
    let pieces: Vec<&[u8]> = data.chunks(1777).collect();
    assert_eq!(copy_in(&via, "COPY rt_text FROM STDIN", &pieces).await.expect("copy in via proxy"), 2000);
    assert_eq!(copy_in(&direct, "COPY rt_direct FROM STDIN", &[&data]).await.expect("copy in direct"), 2000);
    let csv = csv_data();
    let n = copy_in(&via, "COPY rt_csv FROM STDIN WITH (FORMAT csv, HEADER true)", &[&csv]).await.expect("csv in");
    assert_eq!(n, 501);

    // Out in every format: direct == proxy, byte for byte, and equal to what went in.
    for (table, opts) in [
        ("rt_text", ""),
        ("rt_text", "WITH (FORMAT csv, HEADER true)"),
        ("rt_text", "WITH (FORMAT binary)"),
        ("rt_csv", "WITH (FORMAT csv, HEADER true)"),
        ("rt_csv", "WITH (FORMAT csv, FORCE_QUOTE *, QUOTE '''', ESCAPE '\\')"),
        ("rt_csv", "WITH (FORMAT binary)"),
        ("rt_direct", ""),
    ] {
        let sql = format!("COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT {opts}");
        let d = copy_out(&direct, &sql).await;
        let v = copy_out(&via, &sql).await;
        assert!(!d.is_empty());
        assert!(d == v, "{sql}: COPY TO STDOUT differs ({} vs {} bytes)", d.len(), v.len());
    }
    let text_out = copy_out(&via, "COPY (SELECT * FROM rt_text ORDER BY id) TO STDOUT").await;
    assert_eq!(text_out, data, "text data round-trips exactly");
    let csv_out = copy_out(&via, "COPY (SELECT * FROM rt_csv ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true)").await;
    assert_eq!(csv_out, csv, "csv data round-trips exactly");

    // Binary: out through the proxy, back in through the proxy, compare the tables.
    let bin = copy_out(&via, "COPY rt_text TO STDOUT WITH (FORMAT binary)").await;
    assert!(bin.starts_with(b"PGCOPY\n\xff\r\n\0"), "binary COPY signature");
    let pieces: Vec<&[u8]> = bin.chunks(999).collect();
    assert_eq!(copy_in(&via, "COPY rt_bin FROM STDIN WITH (FORMAT binary)", &pieces).await.expect("binary in"), 2000);
    let diff: i64 = direct
        .query_one(
            "SELECT (SELECT count(*) FROM (SELECT * FROM rt_bin EXCEPT ALL SELECT * FROM rt_direct) a) + \
                    (SELECT count(*) FROM (SELECT * FROM rt_direct EXCEPT ALL SELECT * FROM rt_bin) b)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(diff, 0, "binary round trip through the proxy changed rows");
    // The stream is big enough to cross many reads of the proxy.
    let big = "COPY (SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g) TO STDOUT";
    let d = copy_out(&direct, big).await;
    let v = copy_out(&via, big).await;
    assert!(d.len() > 10_000_000 && d == v, "large COPY TO STDOUT differs ({} vs {})", d.len(), v.len());
    proxy.stop().await;
}

#[tokio::test]
async fn copy_from_with_bad_data_fails_like_direct_and_the_connection_survives() {
    ensure_db();
    let proxy = Proxy::start(&[]).await;
    let direct = test_support::connect(&direct_url(DB)).await;
    let via = test_support::connect(&proxy.url(DB)).await;
    direct.batch_execute("CREATE TABLE bad_in (id int, t text)").await.unwrap();
    let data = b"1\tok\n2\tok\nnot-an-int\tx\n4\tnever\n";
    let de = copy_in(&direct, "COPY bad_in FROM STDIN", &[data]).await.expect_err("direct must fail");
    let ve = copy_in(&via, "COPY bad_in FROM STDIN", &[data]).await.expect_err("proxy must fail");
    let (d, v) = (de.as_db_error().expect("db error"), ve.as_db_error().expect("db error"));
    assert_eq!(d.code().code(), "22P02");
    assert_eq!(d.code(), v.code());
    assert_eq!(d.message(), v.message());
    assert_eq!(d.where_(), v.where_(), "the COPY context line");
    // Wrong column count in csv, and the client aborting the COPY itself (CopyFail).
    let ce = copy_in(&via, "COPY bad_in FROM STDIN (FORMAT csv)", &[b"1,a,extra\n"]).await.expect_err("csv");
    assert_eq!(ce.as_db_error().unwrap().code().code(), "22P04");
    {
        let sink = via.copy_in::<_, Bytes>("COPY bad_in FROM STDIN").await.unwrap();
        let mut sink = Box::pin(sink);
        sink.send(Bytes::from_static(b"5\tfive\n")).await.unwrap();
        drop(sink); // CopyFail
    }
    // The connection keeps working, and nothing was inserted.
    for c in [&direct, &via] {
        let n: i64 = c.query_one("SELECT count(*) FROM bad_in", &[]).await.expect("still works").get(0);
        assert_eq!(n, 0);
    }
    assert_eq!(copy_in(&via, "COPY bad_in FROM STDIN", &[b"7\tseven\n"]).await.unwrap(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn client_vanishing_mid_copy_releases_its_backend() {
    let db = "copy_vanish";
    test_support::postgres().fresh_database(db);
    let proxy = Proxy::start(&[]).await;
    let setup = test_support::connect(&direct_url(db)).await;
    setup.batch_execute("CREATE TABLE sink (id int, t text)").await.unwrap();
    drop(setup);
    assert!(eventually(5, || async { backends(db).await == 0 }).await, "baseline");

    // 1. tokio-postgres: the sink is dropped without finish, then the connection task is killed
    //    (the socket closes without CopyFail or Terminate reaching the proxy, or with them — either
    //    way the backend must go).
    let (client, conn) = tokio_postgres::connect(&proxy.url(db), tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(conn);
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let sink = client.copy_in::<_, Bytes>("COPY sink FROM STDIN").await.unwrap();
    let mut sink: Pin<Box<_>> = Box::pin(sink);
    for i in 0..100 {
        sink.feed(Bytes::from(format!("{i}\trow {i}\n"))).await.unwrap();
    }
    sink.flush().await.unwrap();
    let waiting_in_copy = eventually(5, || async move {
        let c = test_support::connect(&direct_url("postgres")).await;
        let q: Option<String> = c.query_one("SELECT max(query) FROM pg_stat_activity WHERE pid = $1", &[&pid]).await.unwrap().get(0);
        q.is_some_and(|q| q.starts_with("COPY sink"))
    })
    .await;
    assert!(waiting_in_copy, "backend {pid} is in the COPY");
    driver.abort();
    drop(sink);
    drop(client);
    assert!(backend_gone(pid, 5).await, "backend {pid} still there 5 s after its client vanished mid-COPY");

    // 2. Raw: CopyInResponse received, some CopyData sent, then the socket is just closed.
    let mut s = common::raw_session(proxy.addr).await;
    // raw_session connects to `postgres`; move to the table via a qualified name is impossible
    // across databases, so COPY into a temp table there.
    s.write_all(&fe::query("SELECT pg_backend_pid()")).await.unwrap();
    let msgs = common::read_until_ready(&mut s, 1).await;
    let (_, row) = msgs.iter().find(|(t, _)| *t == b'D').expect("DataRow");
    let pid2: i32 = std::str::from_utf8(&row[6..]).unwrap().parse().unwrap();
    s.write_all(&fe::query("CREATE TEMP TABLE t (a int); COPY t FROM STDIN")).await.unwrap();
    let mut resp = [0u8; 64];
    let mut got = Vec::new();
    while !got.contains(&b'G') {
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut resp).await.unwrap();
        assert!(n > 0, "closed before CopyInResponse");
        got.extend_from_slice(&resp[..n]);
    }
    s.write_all(&fe::copy_data(b"1\n2\n3\n")).await.unwrap();
    drop(s);
    assert!(backend_gone(pid2, 5).await, "backend {pid2} still there 5 s after a raw client vanished mid-COPY");

    assert!(eventually(5, || async { backends(db).await == 0 }).await, "backends of {db} back to the baseline (0)");
    let n: i64 = test_support::connect(&direct_url(db)).await.query_one("SELECT count(*) FROM sink", &[]).await.unwrap().get(0);
    assert_eq!(n, 0, "an unfinished COPY commits nothing");
    proxy.stop().await;
}

#[tokio::test]
async fn psql_backslash_copy_both_directions() {
    ensure_db();
    let proxy = Proxy::start(&[]).await;
    let direct = test_support::connect(&direct_url(DB)).await;
    direct.batch_execute("CREATE TABLE psql_copy (id int, t text, arr int[])").await.unwrap();
    let dir = std::env::temp_dir().join(format!("citus-proxy-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    std::fs::write(&input, csv_data()).unwrap();
    let out_via = dir.join("out-via.csv");
    let out_direct = dir.join("out-direct.csv");
    let out_text = dir.join("out-via.txt");
    let via_ci = proxy.conninfo(DB);
    let direct_ci = direct_conninfo(DB);
    let (i, ov, od, ot) = (input.clone(), out_via.clone(), out_direct.clone(), out_text.clone());
    let results = tokio::task::spawn_blocking(move || {
        let load = psql(&via_ci, &["-c", &format!("\\copy psql_copy FROM '{}' WITH (FORMAT csv, HEADER true)", i.display())]);
        let q = "\\copy (SELECT * FROM psql_copy ORDER BY id) TO '{}' WITH (FORMAT csv, HEADER true)";
        let out1 = psql(&via_ci, &["-c", &q.replace("{}", &ov.display().to_string())]);
        let out2 = psql(&direct_ci, &["-c", &q.replace("{}", &od.display().to_string())]);
        let out3 = psql(&via_ci, &["-c", &format!("\\copy psql_copy TO '{}'", ot.display())]);
        (load, out1, out2, out3)
    })
    .await
    .unwrap();
    for (ok, stdout, stderr) in [&results.0, &results.1, &results.2, &results.3] {
        assert!(*ok, "psql failed: {stdout} {stderr}");
    }
    assert!(results.0 .1.contains("COPY 501"), "{:?}", results.0);
    let via_bytes = std::fs::read(&out_via).unwrap();
    assert_eq!(via_bytes, std::fs::read(&out_direct).unwrap(), "\\copy TO via proxy == direct");
    assert_eq!(via_bytes, csv_data(), "\\copy round trip");
    let text = std::fs::read(&out_text).unwrap();
    assert_eq!(text, copy_out(&direct, "COPY psql_copy TO STDOUT").await, "\\copy TO (text) == direct COPY");
    let _ = std::fs::remove_dir_all(&dir);
    proxy.stop().await;
}

/// After an extended-protocol COPY FROM (tokio-postgres: Bind, Execute, Sync, CopyData…, CopyDone,
/// Sync — PostgreSQL ignores the first Sync), the session is idle again: limits.idle_timeout
/// applies and a drain ends it at once instead of waiting for shutdown.timeout.
#[tokio::test]
async fn session_is_idle_after_extended_copy_from() {
    ensure_db();
    let proxy = Proxy::start(&[("shutdown.timeout", "30s")]).await;
    let setup = test_support::connect(&direct_url(DB)).await;
    setup.batch_execute("CREATE TABLE idle_after (a int)").await.unwrap();
    let c = test_support::connect(&proxy.url(DB)).await;
    assert_eq!(copy_in(&c, "COPY idle_after FROM STDIN", &[b"1\n2\n"]).await.unwrap(), 2);
    assert!(copy_in(&c, "COPY idle_after FROM STDIN", &[b"x\n"]).await.is_err(), "bad row");
    {
        let sink = c.copy_in::<_, Bytes>("COPY idle_after FROM STDIN").await.unwrap();
        let mut sink = Box::pin(sink);
        sink.send(Bytes::from_static(b"3\n")).await.unwrap();
    } // CopyFail
    assert_eq!(c.query_one("SELECT count(*) FROM idle_after", &[]).await.unwrap().get::<_, i64>(0), 2);
    proxy.shutdown.drain();
    assert!(
        eventually(5, || async { c.is_closed() }).await,
        "an idle session after COPY FROM STDIN was not closed by the drain within 5 s"
    );
    proxy.stop().await;

    let proxy = Proxy::start(&[("limits.idle_timeout", "1s")]).await;
    // Control: a session idle after an ordinary statement is closed.
    let plain = test_support::connect(&proxy.url(DB)).await;
    plain.query_one("SELECT 1", &[]).await.unwrap();
    let c = test_support::connect(&proxy.url(DB)).await;
    assert_eq!(copy_in(&c, "COPY idle_after FROM STDIN", &[b"4\n"]).await.unwrap(), 1);
    assert!(
        eventually(6, || async { plain.is_closed() }).await,
        "limits.idle_timeout (1 s) did not close a session idle after SELECT 1 within 6 s"
    );
    assert!(
        eventually(6, || async { c.is_closed() }).await,
        "limits.idle_timeout (1 s) did not close an idle session after COPY FROM STDIN within 6 s"
    );
    proxy.stop().await;
}
