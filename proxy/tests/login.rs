//! The login phase is bounded and cannot be used to starve other clients: stalled logins hold
//! a login slot (never a client slot) until `limits.startup_timeout`, oversized pre-auth
//! messages are refused from their length, a coordinator that closes or hangs during login
//! ends it with a clear error, and readiness means the coordinator answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::time::{Duration, Instant};

use common::{first_error_code, read_to_close, startup_packet, Proxy};
use test_support::AUTH_USERS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn user(method: &str) -> &'static test_support::AuthUser {
    AUTH_USERS.iter().find(|u| u.method == method).expect("harness role")
}

/// Starts a login as `role` and stops once the server asked for a password / SASL answer.
/// Returns the connection and the authentication request code.
async fn stall_mid_auth(addr: std::net::SocketAddr, role: &str) -> (TcpStream, i32) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup_packet(role, "postgres")).await.expect("startup");
    let tag = s.read_u8().await.expect("auth request");
    let len = s.read_i32().await.expect("len") as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.expect("body");
    assert_eq!(tag, b'R', "expected an authentication request, got {:?}: {}", tag as char, String::from_utf8_lossy(&body));
    (s, i32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// True when the peer closes `s` within `secs` (EOF or reset).
async fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut sink)).await.is_ok()
}

async fn connect_err(url: &str) -> tokio_postgres::Error {
    match tokio::time::timeout(Duration::from_secs(20), tokio_postgres::connect(url, tokio_postgres::NoTls)).await {
        Ok(Ok(_)) => panic!("the connection was expected to be refused"),
        Ok(Err(e)) => e,
        Err(_) => panic!("connecting hung instead of failing"),
    }
}

#[tokio::test]
async fn stalled_logins_hold_no_client_slot_and_are_timed_out() {
    let proxy =
        Proxy::start(&[("limits.max_client_connections", "4"), ("limits.max_logins_in_progress", "50"), ("limits.startup_timeout", "2s")])
            .await;
    let established = test_support::connect(&proxy.url("postgres")).await;
    // Twenty clients stop in the middle of SCRAM (more than max_client_connections).
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let (s, code) = stall_mid_auth(proxy.addr, user("scram-sha-256").name).await;
        assert_eq!(code, 10, "SASL offered");
        stalled.push(s);
    }
    // Real clients still log in, up to max_client_connections in all.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = test_support::connect(&proxy.url("postgres")).await;
        let one: i32 = c.query_one("SELECT 1", &[]).await.expect("query").get(0);
        assert_eq!(one, 1);
        clients.push(c);
    }
    let full = connect_err(&proxy.url("postgres")).await;
    let db = full.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "53300");
    assert!(db.message().contains("max_client_connections"), "{}", db.message());
    let r: i32 = established.query_one("SELECT 2", &[]).await.expect("established client works").get(0);
    assert_eq!(r, 2);
    // The stalled ones are closed once limits.startup_timeout has passed.
    let started = Instant::now();
    for s in &mut stalled {
        assert!(closed_within(s, 10).await, "a login stalled mid-SCRAM is ended by limits.startup_timeout");
    }
    assert!(started.elapsed() >= Duration::from_millis(500), "not before the timeout");
    proxy.stop().await;
}

#[tokio::test]
async fn the_login_limit_refuses_with_53300_and_established_clients_keep_working() {
    let proxy = Proxy::start(&[("limits.max_logins_in_progress", "5"), ("limits.startup_timeout", "10s")]).await;
    let established = test_support::connect(&proxy.url("postgres")).await;
    // Sockets that connect and send nothing at all hold every login slot.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(proxy.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let refused = connect_err(&proxy.url("postgres")).await;
    assert!(started.elapsed() < Duration::from_secs(9), "refused after a short wait, not at the login timeout");
    let db = refused.as_db_error().expect("an ErrorResponse, not a reset");
    assert_eq!(db.code().code(), "53300");
    assert!(db.message().contains("max_logins_in_progress"), "{}", db.message());
    let r: i32 = established.query_one("SELECT 3", &[]).await.expect("established client works").get(0);
    assert_eq!(r, 3);
    for s in &mut idle {
        assert!(closed_within(s, 15).await, "an idle socket is dropped at limits.startup_timeout");
    }
    let c = test_support::connect(&proxy.url("postgres")).await;
    let r: i32 = c.query_one("SELECT 4", &[]).await.expect("logins are possible again").get(0);
    assert_eq!(r, 4);
    proxy.stop().await;
}

#[tokio::test]
async fn an_oversized_authentication_message_is_refused_from_its_length() {
    let proxy = Proxy::start(&[]).await;
    let mut socks = Vec::new();
    for _ in 0..10 {
        let (mut s, code) = stall_mid_auth(proxy.addr, user("password").name).await;
        assert_eq!(code, 3, "cleartext password requested");
        // A PasswordMessage declaring 1 GB; only its first bytes are ever sent.
        let mut p = vec![b'p'];
        p.extend_from_slice(&1_000_000_000i32.to_be_bytes());
        p.extend_from_slice(b"pw");
        s.write_all(&p).await.expect("write header");
        socks.push(s);
    }
    for mut s in socks {
        let reply = read_to_close(&mut s).await;
        assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"), "refused without waiting for the body: {reply:?}");
    }
    // Just over PostgreSQL's 65535-byte bound is refused the same way.
    let (mut s, _) = stall_mid_auth(proxy.addr, user("password").name).await;
    let mut p = vec![b'p'];
    p.extend_from_slice(&(65536i32 + 4).to_be_bytes());
    s.write_all(&p).await.expect("write header");
    assert_eq!(first_error_code(&read_to_close(&mut s).await).as_deref(), Some("08P01"));
    // And the startup packet over 10 000 bytes, before its body.
    let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(&[0, 0, 0x27, 0x11, 0, 3, 0, 0]).await.expect("write");
    assert_eq!(first_error_code(&read_to_close(&mut s).await).as_deref(), Some("08P01"));
    proxy.stop().await;
}

/// A coordinator stand-in on loopback: asks every client for a cleartext password, then does
/// `then` with the connection.
async fn fake_coordinator(close_after_asking: bool) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            if close_after_asking {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(s);
            } else {
                // Accepts (as a hung server's kernel does) and never answers.
                held.push(s);
            }
        }
    });
    (format!("postgres://{addr}"), task)
}

#[tokio::test]
async fn a_coordinator_closing_during_login_ends_it_at_once() {
    let (url, fake) = fake_coordinator(true).await;
    // The fake speaks no TLS: it would take the SSLRequest for a startup packet.
    let proxy = Proxy::start(&[("upstream.url", &url), ("upstream.sslmode", "disable"), ("limits.startup_timeout", "30s")]).await;
    let started = Instant::now();
    let (mut s, code) = stall_mid_auth(proxy.addr, "someone").await;
    assert_eq!(code, 3);
    // The client is still thinking about its password when the coordinator goes away.
    let reply = read_to_close(&mut s).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some("08006"), "told the coordinator is gone: {reply:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "at once, not at limits.startup_timeout");
    proxy.stop().await;
    fake.abort();
}

#[tokio::test]
async fn a_hung_coordinator_fails_logins_and_readiness_within_the_connect_timeout() {
    let (url, fake) = fake_coordinator(false).await;
    let metrics_port = test_support::free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let proxy = Proxy::start(&[
        ("upstream.url", &url),
        ("upstream.connect_timeout", "500ms"),
        ("limits.startup_timeout", "30s"),
        ("routing.enabled", "false"),
        ("metrics.listen", &metrics),
    ])
    .await;
    let err = connect_err(&proxy.url("postgres")).await;
    let db = err.as_db_error().expect("an ErrorResponse, not a hang");
    assert_eq!(db.code().code(), "08001");
    assert!(db.message().contains("connect_timeout"), "{}", db.message());
    let why = proxy.ctx.readiness().await.expect_err("a coordinator that never answers is not ready");
    assert!(why.contains("no answer"), "{why}");
    let (status, _) = http_get(&metrics, "/readyz").await;
    assert_eq!(status, 503);
    proxy.stop().await;
    fake.abort();

    // The real PostgreSQL answers: ready.
    let proxy = Proxy::start(&[("routing.enabled", "false")]).await;
    proxy.ctx.readiness().await.expect("the harness PostgreSQL is ready");
    proxy.stop().await;
}

/// A plain HTTP/1.1 GET; returns the status and the body.
async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("metrics listener");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("request");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await.expect("reply in time").expect("read");
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn idle_metrics_connections_are_capped_and_timed_out() {
    let metrics = format!("127.0.0.1:{}", test_support::free_port());
    let proxy = Proxy::start(&[
        ("metrics.listen", &metrics),
        ("limits.metrics_max_connections", "4"),
        ("limits.metrics_idle_timeout", "1s"),
        ("routing.enabled", "false"),
    ])
    .await;
    let up = common::eventually(10, || async { TcpStream::connect(&metrics).await.is_ok() }).await;
    assert!(up, "the metrics listener starts");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&metrics).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = TcpStream::connect(&metrics).await.expect("connect");
    assert!(closed_within(&mut over, 2).await, "a connection over the cap is closed at once");
    for s in &mut idle {
        assert!(closed_within(s, 10).await, "an idle metrics connection is closed after limits.metrics_idle_timeout");
    }
    let (status, body) = http_get(&metrics, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_burst_of_real_clients_waits_for_login_slots_instead_of_being_refused() {
    let proxy = Proxy::start(&[("limits.max_logins_in_progress", "4")]).await;
    let url = proxy.url("postgres");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                let n: i32 = c.query_one("SELECT $1::int4", &[&i]).await?.get(0);
                Ok::<i32, tokio_postgres::Error>(n)
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let n = t.await.expect("join").unwrap_or_else(|e| panic!("client {i} of the burst: {}", test_support::describe(&e)));
        assert_eq!(n, i as i32);
    }
    proxy.stop().await;
}

/// Kills the proxy subprocess when the test ends, panicking or not.
struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn accept_failures_back_off_and_are_logged_once_per_interval() {
    use std::process::{Command, Stdio};
    let port = test_support::free_port();
    let log = std::env::temp_dir().join(format!("citus-proxy-accept-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    // Few file descriptors: the proxy runs out of them and its accepts fail.
    let cmd = format!(
        "ulimit -n 48 && exec {} --listen 127.0.0.1:{port} --upstream postgres://{} --upstream-sslmode disable --metrics-listen off --routing-enabled false",
        env!("CARGO_BIN_EXE_citus-proxy"),
        test_support::postgres().addr()
    );
    let child = Command::new("sh").args(["-c", &cmd]).stdout(Stdio::null()).stderr(log_file).spawn().expect("start citus-proxy");
    let _running = Running(child);
    assert!(common::eventually(10, || async { TcpStream::connect(("127.0.0.1", port)).await.is_ok() }).await, "the proxy starts");
    let mut held = Vec::new();
    for _ in 0..120 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(&log).expect("read log");
    let failures = text.lines().filter(|l| l.contains("accept failed")).count();
    assert!(failures >= 1, "the descriptor limit was reached (else this test proves nothing): {text}");
    assert!(failures <= 2, "one line per interval, not one per failure: {failures} lines\n{text}");
    drop(held);
    // Once descriptors are free again, clients are served.
    let url = format!("postgres://{}@127.0.0.1:{port}/postgres?sslmode=disable", test_support::postgres().superuser());
    let ok = common::eventually(15, || {
        let url = url.clone();
        async move { tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_ok() }
    })
    .await;
    assert!(ok, "the proxy serves clients again after the descriptor shortage");
    let _ = std::fs::remove_file(&log);
}
