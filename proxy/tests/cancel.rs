//! Query cancellation from a real client: the proxy hands out its own keys and forwards a
//! CancelRequest to the backend the key maps to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::time::{Duration, Instant};

use common::Proxy;

#[tokio::test]
async fn cancelling_pg_sleep_through_the_proxy_works() {
    let proxy = Proxy::start(&[]).await;
    let client = test_support::connect(&proxy.url("postgres")).await;
    let token = client.cancel_token();
    let started = Instant::now();
    let sleeper = tokio::spawn(async move { client.query("SELECT pg_sleep(30)", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    token.cancel_query(tokio_postgres::NoTls).await.expect("send cancel");
    let res = tokio::time::timeout(Duration::from_secs(10), sleeper).await.expect("cancel took effect").expect("join");
    let err = res.expect_err("the query must have been cancelled");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("57014"));
    assert!(started.elapsed() < Duration::from_secs(20));
    proxy.stop().await;
}

#[tokio::test]
async fn a_wrong_cancel_key_cancels_nothing() {
    use tokio::io::AsyncWriteExt;
    let proxy = Proxy::start(&[]).await;
    let client = test_support::connect(&proxy.url("postgres")).await;
    let sleeper = tokio::spawn(async move { client.query("SELECT pg_sleep(1)", &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A key the proxy never issued.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let mut req = 16i32.to_be_bytes().to_vec();
    req.extend_from_slice(&80877102i32.to_be_bytes());
    req.extend_from_slice(&12345i32.to_be_bytes());
    req.extend_from_slice(&[9, 9, 9, 9]);
    s.write_all(&req).await.expect("write");
    let res = sleeper.await.expect("join");
    assert!(res.is_ok(), "query must finish normally: {res:?}");
    proxy.stop().await;
}

// ---- The same client code straight to PostgreSQL and through the proxy ----

use std::net::SocketAddr;

use common::{fe, pg_addr, read_until_ready, startup_packet, RawMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw trust login to `addr`; returns the session and the BackendKeyData it was given.
async fn login(addr: SocketAddr) -> (tokio::net::TcpStream, i32, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup_packet(test_support::postgres().superuser(), "postgres")).await.expect("startup");
    let msgs = read_until_ready(&mut s, 1).await;
    let (_, key) = msgs.iter().find(|(t, _)| *t == b'K').expect("BackendKeyData");
    assert!(!msgs.iter().any(|(t, _)| *t == b'E'), "login failed: {msgs:?}");
    let pid = i32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    (s, pid, key[4..].to_vec())
}

/// The first column of the first DataRow, as text.
fn first_value(msgs: &[RawMsg]) -> Option<String> {
    let (_, row) = msgs.iter().find(|(t, _)| *t == b'D')?;
    let len = i32::from_be_bytes(row.get(2..6)?.try_into().ok()?) as usize;
    Some(String::from_utf8_lossy(row.get(6..6 + len)?).into_owned())
}

fn error_code(msgs: &[RawMsg]) -> Option<String> {
    let (_, body) = msgs.iter().find(|(t, _)| *t == b'E')?;
    body.split(|&b| b == 0).find(|f| f.first() == Some(&b'C')).map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
}

async fn simple(s: &mut tokio::net::TcpStream, sql: &str) -> Vec<RawMsg> {
    s.write_all(&fe::query(sql)).await.expect("query");
    read_until_ready(s, 1).await
}

/// Cancels as libpq's PQcancel does: sends the CancelRequest and returns only once the server
/// closed the connection (which PostgreSQL does after it signalled the backend).
async fn cancel_like_libpq(addr: SocketAddr, pid: i32, secret: &[u8]) {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("cancel connection");
    let mut req = ((12 + secret.len()) as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&80877102i32.to_be_bytes());
    req.extend_from_slice(&pid.to_be_bytes());
    req.extend_from_slice(secret);
    c.write_all(&req).await.expect("send cancel");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest))
        .await
        .expect("the server closes the cancel connection")
        .expect("read");
    assert!(rest.is_empty(), "a CancelRequest is answered by nothing but the close");
}

#[tokio::test]
async fn the_client_sees_its_backends_real_pid() {
    let proxy = Proxy::start(&[]).await;
    for (what, addr) in [("direct", pg_addr()), ("proxy", proxy.addr)] {
        let (mut s, pid, _) = login(addr).await;
        let backend_pid = first_value(&simple(&mut s, "SELECT pg_backend_pid()").await);
        assert_eq!(backend_pid, Some(pid.to_string()), "{what}: BackendKeyData PID = pg_backend_pid()");
        let activity =
            simple(&mut s, &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND query LIKE '%pg_stat_activity%'")).await;
        assert_eq!(first_value(&activity).as_deref(), Some("1"), "{what}: pg_stat_activity knows the PID");
        let notified = simple(&mut s, "LISTEN ident; NOTIFY ident, 'x'").await;
        let (_, note) = notified.iter().find(|(t, _)| *t == b'A').unwrap_or_else(|| panic!("{what}: no NotificationResponse"));
        assert_eq!(i32::from_be_bytes([note[0], note[1], note[2], note[3]]), pid, "{what}: NOTIFY names the same PID");
        // pg_terminate_backend(pid) from another session ends exactly this one.
        let (mut other, _, _) = login(addr).await;
        assert_eq!(first_value(&simple(&mut other, &format!("SELECT pg_terminate_backend({pid})")).await).as_deref(), Some("t"));
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await.expect("terminated session closes");
        assert_eq!(error_code_raw(&rest).as_deref(), Some("57P01"), "{what}: the terminated client is told why");
    }
    proxy.stop().await;
}

fn error_code_raw(bytes: &[u8]) -> Option<String> {
    common::first_error_code(bytes)
}

#[tokio::test]
async fn a_cancel_never_lands_on_the_next_statement() {
    let proxy = Proxy::start(&[]).await;
    for (what, addr) in [("direct", pg_addr()), ("proxy", proxy.addr)] {
        let (mut s, pid, secret) = login(addr).await;
        // A cancel that arrives when the statement it was meant for is over is ignored by
        // PostgreSQL; it must not be delivered late, onto the statement after it.
        for round in 0..10 {
            cancel_like_libpq(addr, pid, &secret).await;
            let next = simple(&mut s, "SELECT pg_sleep(0.2)").await;
            assert_eq!(error_code(&next), None, "{what}, round {round}: the cancel hit the next statement: {next:?}");
        }
        // A cancel that does hit its statement affects that one only.
        for round in 0..3 {
            s.write_all(&fe::query("SELECT pg_sleep(30)")).await.expect("sleep");
            tokio::time::sleep(Duration::from_millis(150)).await;
            cancel_like_libpq(addr, pid, &secret).await;
            let cancelled = read_until_ready(&mut s, 1).await;
            assert_eq!(error_code(&cancelled).as_deref(), Some("57014"), "{what}, round {round}: pg_sleep was cancelled");
            let next = simple(&mut s, "BEGIN; SELECT 1; COMMIT").await;
            assert_eq!(error_code(&next), None, "{what}, round {round}: the statement after a cancel runs: {next:?}");
        }
    }
    proxy.stop().await;
}
