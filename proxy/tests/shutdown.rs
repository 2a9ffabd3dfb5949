//! Shutdown: draining lets running transactions finish and closes idle sessions; closing ends
//! everything at once. The binary maps SIGTERM to drain and SIGINT to close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, Proxy};

#[tokio::test]
async fn drain_lets_transactions_finish() {
    let proxy = Proxy::start(&[("shutdown.timeout", "10s")]).await;
    let idle = test_support::connect(&proxy.url("postgres")).await;
    let busy = test_support::connect(&proxy.url("postgres")).await;
    busy.batch_execute("BEGIN; CREATE TEMP TABLE t (x int)").await.expect("begin");
    proxy.shutdown.drain();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(idle.query_one("SELECT 1", &[]).await.is_err(), "idle client is closed at once");
    assert!(tokio::net::TcpStream::connect(proxy.addr).await.is_err(), "no new connections while draining");
    busy.batch_execute("INSERT INTO t VALUES (1)").await.expect("transaction goes on");
    busy.batch_execute("COMMIT").await.expect("commit");
    assert!(eventually(5, || async { busy.is_closed() }).await, "closed once idle");
    tokio::time::timeout(Duration::from_secs(5), proxy.task).await.expect("server stops").expect("join");
}

#[tokio::test]
async fn drain_timeout_then_close() {
    let proxy = Proxy::start(&[("shutdown.timeout", "300ms")]).await;
    let busy = test_support::connect(&proxy.url("postgres")).await;
    busy.batch_execute("BEGIN").await.expect("begin");
    proxy.shutdown.drain();
    tokio::time::timeout(Duration::from_secs(5), proxy.task).await.expect("server stops after the timeout").expect("join");
    assert!(busy.query_one("SELECT 1", &[]).await.is_err());
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary() -> (Running, u16) {
    let port = test_support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", &format!("postgres://{}@{}", test_support::postgres().superuser(), test_support::postgres().addr())])
        .args(["--upstream-sslmode", "disable", "--shutdown-timeout", "20s", "--metrics-listen", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start citus-proxy");
    (Running(child), port)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "kill {sig}");
}

#[tokio::test]
async fn sigterm_drains_and_sigint_closes() {
    for (sig, in_tx_finishes) in [("-TERM", true), ("-INT", false)] {
        let (mut proc_, port) = spawn_binary();
        let url = format!("postgres://{}@127.0.0.1:{port}/postgres?sslmode=disable", test_support::postgres().superuser());
        assert!(eventually(10, || async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() }).await);
        let c = test_support::connect(&url).await;
        c.batch_execute("BEGIN").await.expect("begin");
        signal(&proc_.0, sig);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = c.batch_execute("SELECT 1; COMMIT").await;
        assert_eq!(r.is_ok(), in_tx_finishes, "{sig}: {r:?}");
        let exited = eventually(10, || {
            let done = matches!(proc_.0.try_wait(), Ok(Some(_)));
            async move { done }
        })
        .await;
        assert!(exited, "{sig}: the process exits");
        let status = proc_.0.wait().expect("status");
        assert!(status.success(), "{sig}: clean exit, got {status:?}");
    }
}
