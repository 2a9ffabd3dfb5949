//! Bad input and faults: the offending client gets an ErrorResponse with a SQLSTATE and is
//! disconnected; every other client keeps working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::time::Duration;

use common::{backends, eventually, first_error_code, raw_session, read_to_close, Proxy};
use tokio::io::AsyncWriteExt;

async fn assert_rejected(proxy: &Proxy, bytes: &[u8], code: &str, what: &str) {
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let reply = read_to_close(&mut s).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some(code), "{what}: reply {reply:?}");
}

async fn assert_rejected_after_startup(proxy: &Proxy, bytes: &[u8], code: &str, what: &str) {
    let mut s = raw_session(proxy.addr).await;
    s.write_all(bytes).await.expect("write");
    let reply = read_to_close(&mut s).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some(code), "{what}: reply {reply:?}");
}

#[tokio::test]
async fn malformed_input_is_refused_and_others_keep_working() {
    let proxy = Proxy::start(&[("limits.max_message_size", "4096")]).await;
    let bystander = test_support::connect(&proxy.url("postgres")).await;
    let busy = {
        let url = proxy.url("postgres");
        tokio::spawn(async move {
            let c = test_support::connect(&url).await;
            for i in 0..200i64 {
                let r: i64 = c.query_one("SELECT $1::int8", &[&i]).await.expect("bystander query").get(0);
                assert_eq!(r, i);
            }
        })
    };
    assert_rejected(&proxy, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "08P01", "HTTP instead of startup").await;
    assert_rejected(&proxy, &[0x80, 0, 0, 0, 0, 3, 0, 0], "08P01", "length 2^31").await;
    assert_rejected(&proxy, &[0, 0, 0, 4], "08P01", "length below the minimum").await;
    let mut v2 = 16i32.to_be_bytes().to_vec();
    v2.extend_from_slice(&(2i32 << 16).to_be_bytes());
    v2.extend_from_slice(b"user\0x\0\0\0");
    assert_rejected(&proxy, &v2[..16], "0A000", "protocol 2.0").await;
    assert_rejected(&proxy, &[0, 0, 0, 12, 0, 3, 0, 0, b'u', b's', b'e', b'r'], "08P01", "unterminated startup").await;

    assert_rejected_after_startup(&proxy, b"Y\0\0\0\x04", "08P01", "unknown message type").await;
    assert_rejected_after_startup(&proxy, b"Q\0\0\0\x02", "08P01", "length below 4").await;
    // A Bind declaring five parameters but carrying none: truncated inside the frame.
    assert_rejected_after_startup(&proxy, b"B\0\0\0\x0a\0\0\0\0\0\x05", "08P01", "truncated Bind").await;
    let mut big = b"Q".to_vec();
    big.extend_from_slice(&(8000i32).to_be_bytes());
    big.extend(std::iter::repeat_n(b' ', 7995));
    big.push(0);
    assert_rejected_after_startup(&proxy, &big, "08P01", "message over limits.max_message_size").await;

    busy.await.expect("bystander kept working");
    let r: i32 = bystander.query_one("SELECT 1", &[]).await.expect("still works").get(0);
    assert_eq!(r, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_is_a_clear_error() {
    let port = test_support::free_port();
    let proxy = Proxy::start(&[("upstream.url", &format!("postgres://127.0.0.1:{port}"))]).await;
    let err = tokio_postgres::connect(&proxy.url("postgres"), tokio_postgres::NoTls).await.err().expect("must fail");
    let db = err.as_db_error().expect("an ErrorResponse, not a hang or a reset");
    assert_eq!(db.code().code(), "08001");
    assert!(db.message().contains(&format!("127.0.0.1:{port}")), "names the upstream: {}", db.message());
    proxy.stop().await;
}

#[tokio::test]
async fn connection_limit_gives_53300() {
    let proxy = Proxy::start(&[("limits.max_client_connections", "2")]).await;
    let a = test_support::connect(&proxy.url("postgres")).await;
    let _b = test_support::connect(&proxy.url("postgres")).await;
    let err = tokio_postgres::connect(&proxy.url("postgres"), tokio_postgres::NoTls).await.err().expect("third is refused");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("53300"));
    drop(a);
    assert!(
        eventually(5, || async { tokio_postgres::connect(&proxy.url("postgres"), tokio_postgres::NoTls).await.is_ok() }).await,
        "a slot frees up when a client leaves"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn idle_timeout_closes_idle_sessions_only() {
    let proxy = Proxy::start(&[("limits.idle_timeout", "300ms")]).await;
    let idle = test_support::connect(&proxy.url("postgres")).await;
    let busy = test_support::connect(&proxy.url("postgres")).await;
    busy.batch_execute("BEGIN").await.expect("begin");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(idle.query_one("SELECT 1", &[]).await.is_err(), "idle session was closed");
    let r: i32 = busy.query_one("SELECT 2", &[]).await.expect("in-transaction session kept").get(0);
    assert_eq!(r, 2);
    proxy.stop().await;
}

#[tokio::test]
async fn a_vanishing_client_releases_its_upstream() {
    let db = "vanish";
    let pg = test_support::postgres();
    pg.fresh_database(db);
    let proxy = Proxy::start(&[]).await;
    let before = backends(db).await;
    for sql in ["SELECT repeat('x', 1000) FROM generate_series(1, 200000)", "COPY (SELECT g FROM generate_series(1, 2000000) g) TO STDOUT"]
    {
        let c = test_support::connect(&proxy.url(db)).await;
        let stream = c.query_raw(sql, std::iter::empty::<i32>());
        // Start the result, then drop the client mid-stream.
        let _ = tokio::time::timeout(Duration::from_millis(200), stream).await;
        drop(c);
    }
    // Mid-COPY FROM: start a COPY and vanish without CopyDone.
    {
        let c = test_support::connect(&proxy.url(db)).await;
        c.batch_execute("CREATE TABLE IF NOT EXISTS sink (x int)").await.expect("create");
        let sink = c.copy_in::<_, bytes::Bytes>("COPY sink FROM STDIN").await.expect("copy in");
        drop(sink);
        drop(c);
    }
    assert!(eventually(10, || async { backends(db).await == before }).await, "upstream backends were released");
    proxy.stop().await;
}

#[tokio::test]
async fn an_oversized_execute_is_blamed_on_the_client() {
    // PostgreSQL drops a connection sending an Execute (or any message other than Query,
    // FunctionCall, Parse, Bind, CopyData) over 10 000 bytes without an ErrorResponse; the proxy
    // must say it was the client's message (08P01), not that it lost the coordinator (08006).
    let proxy = Proxy::start(&[]).await;
    for tag in [b'E', b'D', b'S', b'C'] {
        let mut s = raw_session(proxy.addr).await;
        let mut frame = vec![tag];
        frame.extend_from_slice(&(10 * 1024 * 1024i32).to_be_bytes());
        frame.extend(std::iter::repeat_n(0u8, 64 * 1024));
        // The proxy may refuse before all of it is written.
        let _ = s.write_all(&frame).await;
        let reply = read_to_close(&mut s).await;
        assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"), "{:?} of 10 MB: {reply:?}", tag as char);
    }
    // Large statements are still fine.
    let c = test_support::connect(&proxy.url("postgres")).await;
    let big = "x".repeat(100_000);
    let n: i32 = c.query_one("SELECT length($1::text)", &[&big]).await.expect("a 100 kB Bind").get(0);
    assert_eq!(n, 100_000);
    proxy.stop().await;
}
