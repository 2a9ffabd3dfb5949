#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy
mod common;
use common::Proxy;

#[tokio::test]
async fn simple_and_extended_queries_pass_through() {
    let proxy = Proxy::start(&[]).await;
    let c = test_support::connect(&proxy.url("postgres")).await;
    let rows = c.simple_query("SELECT 1 AS a; SELECT 'two'").await.expect("simple");
    assert_eq!(rows.len(), 6, "per statement: RowDescription, row, CommandComplete: {rows:?}");
    let r = c.query_one("SELECT $1::int8 + 1", &[&41i64]).await.expect("extended");
    assert_eq!(r.get::<_, i64>(0), 42);
    proxy.stop().await;
}
