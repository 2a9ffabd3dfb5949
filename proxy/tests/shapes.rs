//! SHOW ROUTES counts each statement shape under its own text, even when the router's analysis
//! cache (here at its smallest) evicts shapes and analyses them again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use common::Proxy;

#[tokio::test]
async fn evicted_shapes_are_counted_under_their_own_text() {
    let proxy = Proxy::start_citus(&[("routing.shape_cache_size", "16")]).await;
    let c = test_support::connect(&proxy.citus_url()).await;
    for round in 0..3 {
        for i in 0..40 {
            c.simple_query(&format!("SELECT {round} AS c{i}")).await.expect("query");
        }
    }
    let top = proxy.ctx.shapes.top(1000);
    for i in 0..40 {
        let text = format!("SELECT $1 AS c{i}");
        let row = top.iter().find(|t| t.0 == text).unwrap_or_else(|| panic!("{text} missing: {top:?}"));
        assert_eq!(row.2, 3, "{text} ran three times: {row:?}");
    }
    proxy.stop().await;
}
