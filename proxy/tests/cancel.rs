//! Query cancellation from a real client: the proxy hands out its own keys and forwards a
//! CancelRequest to the backend the key maps to.

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
