//! Connection pooling through the proxy against a real PostgreSQL: transaction and session
//! modes with the simple, extended and prepared protocols, COPY, pinning, exhaustion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Proxy;

async fn pooled(mode: &str, size: &str) -> Proxy {
    Proxy::start(&[("pool.mode", mode), ("pool.size", size), ("auth.type", "trust"), ("routing.enabled", "false")]).await
}

async fn connect(p: &Proxy) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&p.url("postgres"), tokio_postgres::NoTls).await.expect("connect through the pool");
    tokio::spawn(conn);
    c
}

#[tokio::test]
async fn transaction_mode_shares_one_server_connection() {
    let p = pooled("transaction", "1").await;
    let a = connect(&p).await;
    let b = connect(&p).await;
    let pa: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let pb: i32 = b.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    assert_eq!(pa, pb, "two clients, pool.size 1: the same backend serves both");
    // Extended protocol with a named (prepared) statement, from both clients.
    let sa = a.prepare("SELECT $1::int + 1").await.unwrap();
    let sb = b.prepare("SELECT $1::int + 2").await.unwrap();
    for i in 0..20 {
        let ra: i32 = a.query_one(&sa, &[&i]).await.unwrap().get(0);
        let rb: i32 = b.query_one(&sb, &[&i]).await.unwrap().get(0);
        assert_eq!((ra, rb), (i + 1, i + 2));
    }
    p.stop().await;
}
