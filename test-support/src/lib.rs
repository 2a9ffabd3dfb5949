//! Real servers for the test suites: PostgreSQL and Redis on free loopback ports, started once per
//! test binary (or taken from `CITUS_PROXY_TEST_PG` / `CITUS_PROXY_TEST_REDIS`), and a database that
//! presents Citus's catalogs exactly as a real coordinator does (or a real coordinator named by
//! `CITUS_PROXY_TEST_CITUS`), and a multi-node cluster of such databases for shard-local routing
//! ([`citus_nodes`]). Nothing here is a mock: every test talks to a real server.
// The harness fails a test by panicking, with a message that says how to get the missing server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod binaries;
mod certs;
mod citus;
mod citus_nodes;
mod citus_tls;
mod ports;
mod postgres;
mod reaper;
mod redis;
mod roles;

pub use certs::TestCerts;
pub use citus::{citus, CitusCluster};
pub use citus_nodes::{citus_nodes, citus_nodes_with_disposable, CitusNode, NodeCluster};
pub use citus_tls::{CitusAutoCert, CITUS_SSL_CIPHERS};
pub use ports::free_port;
pub use postgres::{postgres, start_postgres, PgServer, ServerTls};
pub use redis::{redis, RedisServer};
pub use roles::{AuthUser, AUTH_USERS};

/// Runs `fut` to completion on a private runtime in its own thread, so harness set-up works from
/// both plain `#[test]`s and `#[tokio::test]`s (a runtime cannot be blocked on inside another).
pub(crate) fn block_on_private<F, T>(fut: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test harness: cannot build a tokio runtime")
            .block_on(fut)
    })
    .join()
    .expect("test harness: set-up thread panicked")
}

/// Connects with tokio-postgres and drives the connection in the background of the current runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("test harness: cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs each statement on its own (CREATE DATABASE refuses an implicit transaction block).
pub async fn execute_each(url: &str, statements: &[String]) {
    let client = connect(url).await;
    for sql in statements {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("test harness: {sql}: {}", describe(&e)));
    }
}

/// A tokio-postgres error with the server's message, which its Display leaves out.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}
