//! Helpers for the pooling tests: pooled proxies, clients through them, SQLSTATEs, backend pids.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::Proxy;

/// A proxy in `mode` (`off`, `session`, `transaction`) with `pool.size = size`, trust auth, and
/// `extra` settings on top. `routed` false turns the route hooks off.
pub async fn pooled_with(mode: &str, size: &str, routed: bool, extra: &[(&'static str, &str)]) -> Proxy {
    init_logs();
    let mut s: Vec<(&'static str, &str)> = vec![("pool.mode", mode), ("pool.size", size), ("auth.type", "trust")];
    if !routed {
        s.push(("routing.enabled", "false"));
    }
    s.extend_from_slice(extra);
    Proxy::start(&s).await
}

/// As `pooled_with`, routing off, nothing extra.
pub async fn pooled(mode: &str, size: &str) -> Proxy {
    pooled_with(mode, size, false, &[]).await
}

/// Every mode, then both routing settings in transaction mode: what the scenario tests run over.
pub const MODES: [(&str, bool); 4] = [("off", false), ("session", false), ("transaction", false), ("transaction", true)];

/// A tokio-postgres client through the proxy on database `postgres`.
pub async fn connect(p: &Proxy) -> Client {
    connect_db(p, "postgres").await
}

pub async fn connect_db(p: &Proxy, db: &str) -> Client {
    let url = p.url(db);
    let (c, conn) = tokio::time::timeout(Duration::from_secs(30), tokio_postgres::connect(&url, NoTls))
        .await
        .unwrap_or_else(|_| panic!("no login through the pool within 30 s ({url})"))
        .unwrap_or_else(|e| panic!("connect through the pool ({url}): {e}"));
    tokio::spawn(conn);
    c
}

/// A client straight to the harness PostgreSQL (set-up, pg_terminate_backend, checks).
pub async fn direct() -> Client {
    test_support::connect(&super::direct_url("postgres")).await
}

/// The SQLSTATE of a server error, or a description of a non-server error.
pub fn code(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.code().code().to_string(),
        None => format!("(not a server error: {e})"),
    }
}

pub async fn pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).await.expect("pg_backend_pid()").get(0)
}

/// One value of a simple query (first row, first column).
pub async fn simple_value(c: &Client, sql: &str) -> Option<String> {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
        _ => None,
    })?
}

/// With `CITUS_PROXY_TEST_LOG` set (a filter such as `citus_proxy=debug`), the in-process proxy's
/// logs go to the test output.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("CITUS_PROXY_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_test_writer().try_init();
    }
}

/// Bounds a step that must not hang.
pub async fn within<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("{what}: no answer within {secs} s (hang)"))
}
