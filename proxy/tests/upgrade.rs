//! Upgrading without refusing clients: with `listen_reuseport`, a new process binds the address
//! the old one still listens on; SIGTERM then drains the old one (its /readyz says 503 at once,
//! its open transaction finishes) while every new connection is served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spawn(port: u16, metrics: u16) -> Child {
    let pg = test_support::postgres();
    Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--listen-reuseport", "true"])
        .args(["--upstream", &format!("postgres://{}@{}", pg.superuser(), pg.addr()), "--upstream-sslmode", "disable"])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}"), "--routing-enabled", "false", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start citus-proxy")
}

/// The status code of GET `path`, or None while nothing answers.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).split_whitespace().nth(1)?.parse().ok()
}

async fn ready(port: u16) -> bool {
    common::eventually(15, || async move { http_status(port, "/readyz").await == Some(200) }).await
}

#[tokio::test]
async fn a_new_version_takes_over_the_port_while_the_old_one_drains() {
    let (port, m_old, m_new) = (test_support::free_port(), test_support::free_port(), test_support::free_port());
    let mut old = spawn(port, m_old);
    assert!(ready(m_old).await, "the old proxy never became ready");
    let url = format!("postgres://{}@127.0.0.1:{port}/postgres?sslmode=disable", test_support::postgres().superuser());
    let in_tx = test_support::connect(&url).await;
    in_tx.batch_execute("BEGIN; SELECT 1").await.expect("open a transaction on the old process");

    let mut new = spawn(port, m_new);
    assert!(ready(m_new).await, "the new proxy could not bind the same port");
    let sent = Command::new("kill").args(["-TERM", &old.id().to_string()]).status().expect("kill(1) is needed: apt-get install -y procps");
    assert!(sent.success(), "kill -TERM failed");
    let draining = common::eventually(5, || async { http_status(m_old, "/readyz").await == Some(503) }).await;
    assert!(draining, "a draining proxy must not report ready");

    // New clients are served throughout the handover.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut served = 0;
    while Instant::now() < deadline {
        let c = test_support::connect(&url).await;
        let v: i32 = c.query_one("SELECT 41 + 1", &[]).await.expect("served").get(0);
        assert_eq!(v, 42);
        served += 1;
    }
    assert!(served > 10, "{served}");
    // The old process's transaction still finishes, then the process ends by itself.
    in_tx.batch_execute("COMMIT").await.expect("commit on the draining process");
    let exited = common::eventually(10, || {
        let done = old.try_wait().ok().flatten().is_some();
        async move { done }
    })
    .await;
    assert!(exited, "the old process did not exit after draining");
    assert!(old.wait().expect("status").success());
    let _ = new.kill();
    let _ = new.wait();
}

#[tokio::test]
async fn without_reuseport_a_second_bind_is_refused() {
    let port = test_support::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let first = citus_proxy::net::listener::bind(addr, false).expect("first bind");
    assert!(citus_proxy::net::listener::bind(addr, false).is_err());
    drop(first);
    let a = citus_proxy::net::listener::bind(addr, true).expect("reuseport bind");
    let b = citus_proxy::net::listener::bind(addr, true).expect("second reuseport bind");
    drop((a, b));
}
