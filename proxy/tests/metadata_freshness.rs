//! Metadata freshness and metadata per database (issue #10 §3, §4), against the Citus catalog
//! fixture (its `create_distributed_table` and `citus_move_shard_placement` write the catalog
//! rows Citus writes):
//! - a metadata-changing statement through the proxy: the session's very next statement routes
//!   on the new snapshot (no window);
//! - a change made outside the proxy is seen within a few seconds through the change probe, and
//!   an unchanged catalog is not re-read;
//! - each database gets its own snapshot: tables of a second database route by that database's
//!   catalog, and a view there is a view, whatever the upstream URL's database holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::sync::Arc;
use std::time::Duration;

use common::{connect_observed, eventually, Observed, Proxy, Seen};

/// The route notice of the last statement.
async fn route_of(c: &Observed, sql: &str) -> String {
    notice_of(c, sql, true).await
}

async fn notice_of(c: &Observed, sql: &str, must_succeed: bool) -> String {
    c.take();
    let result = c.client.simple_query(sql).await;
    if must_succeed {
        result.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let seen = c.take();
    seen.iter()
        .rev()
        .find_map(|s| match s {
            Seen::Notice { message, .. } if message.starts_with("citus-proxy route") => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no route notice for {sql}: {seen:?}"))
}

async fn reporting(url: &str) -> Observed {
    let c = connect_observed(url).await;
    c.client.simple_query("SET citus_proxy.report_routing = on").await.expect("report routing");
    c
}

fn route_word(notice: &str) -> &str {
    let rest = notice.trim_start_matches("citus-proxy route: ");
    rest.split(|c: char| c == ':' || c.is_whitespace()).next().unwrap_or("")
}

#[tokio::test]
async fn the_next_statement_routes_on_the_snapshot_a_citus_function_made() {
    let url = test_support::citus().private_copy("citus_fresh_inproxy");
    // Neither the interval nor the probe may help: only the in-proxy path is tested here.
    let proxy = Proxy::start_on(&url, &[("metadata.refresh_interval", "0s"), ("metadata.probe_interval", "0s")]).await;
    let c = reporting(&proxy.url("citus_fresh_inproxy")).await;

    c.client.simple_query("CREATE TABLE fresh_t (id bigint PRIMARY KEY, v text)").await.expect("create");
    let before = route_of(&c, "SELECT * FROM fresh_t WHERE id = 42").await;
    assert_eq!(route_word(&before), "local", "{before}");
    c.client.simple_query("SELECT create_distributed_table('fresh_t', 'id')").await.expect("distribute");
    let after = route_of(&c, "SELECT * FROM fresh_t WHERE id = 42").await;
    assert_eq!(route_word(&after), "single-shard", "right after create_distributed_table: {after}");

    // Shard moves back and forth: every next statement sees where 42 now lives.
    let mut node = 9702;
    for round in 0..6 {
        let to = if node == 9702 { 9701 } else { 9702 };
        let call = format!("SELECT citus_move_shard_placement(102035, '127.0.0.1', {node}, '127.0.0.1', {to})");
        c.client.simple_query(&call).await.expect("move");
        node = to;
        let r = route_of(&c, "SELECT * FROM users WHERE user_id = 42").await;
        assert!(r.contains(&format!("127.0.0.1:{node}")), "round {round}: after moving 102035 to {node}: {r}");
        // The co-located orders shard moved with it.
        let r = route_of(&c, "SELECT * FROM orders WHERE user_id = 42").await;
        assert!(r.contains(&format!("127.0.0.1:{node}")), "round {round}: orders 102100 after the move: {r}");
    }

    // Inside a transaction the change is visible to the catalog reader only after COMMIT; the
    // statement after the COMMIT routes on it.
    c.client.simple_query("CREATE TABLE fresh_tx (id bigint)").await.expect("create");
    c.client.simple_query("BEGIN").await.expect("begin");
    c.client.simple_query("SELECT create_distributed_table('fresh_tx', 'id')").await.expect("distribute");
    c.client.simple_query("COMMIT").await.expect("commit");
    let r = route_of(&c, "SELECT * FROM fresh_tx WHERE id = 7").await;
    assert_eq!(route_word(&r), "single-shard", "after COMMIT: {r}");
    proxy.stop().await;
}

#[tokio::test]
async fn changes_outside_the_proxy_are_probed_and_unchanged_catalogs_are_not_reread() {
    let url = test_support::citus().private_copy("citus_fresh_probe");
    // The default probe interval (1 s); no interval reloads.
    let proxy = Proxy::start_on(&url, &[("metadata.refresh_interval", "0s")]).await;
    let ctx = Arc::clone(&proxy.ctx);
    let route_of_42 = |ctx: &Arc<citus_proxy::context::Context>| {
        let g = ctx.metadata.topology();
        let t = g.as_ref().expect("loaded").clone();
        citus_proxy_router::Router::new(4).route_query("SELECT * FROM users WHERE user_id = 42", &t, &["public"]).route.nodes()
    };
    assert_eq!(route_of_42(&ctx), vec!["127.0.0.1:9702".to_string()]);

    // Nothing changes: the probe runs, the catalog is not read again.
    let loads = ctx.metadata.loads();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ctx.metadata.loads(), loads, "an unchanged catalog must not be re-read");

    // A shard move behind the proxy's back (the rebalancer rewrites the placement's group).
    let direct = test_support::connect(&url).await;
    direct.batch_execute("UPDATE pg_dist_placement SET groupid = 1 WHERE shardid = 102035").await.expect("move");
    let moved = eventually(5, || {
        let ctx = Arc::clone(&ctx);
        async move { route_of_42(&ctx) == vec!["127.0.0.1:9701".to_string()] }
    })
    .await;
    assert!(moved, "the move outside the proxy was not picked up: {:?}", route_of_42(&ctx));

    // A placement deleted and re-created (same count) on the other group.
    direct
        .batch_execute(
            "DELETE FROM pg_dist_placement WHERE shardid = 102035; \
             INSERT INTO pg_dist_placement (placementid, shardid, shardstate, shardlength, groupid) VALUES (999001, 102035, 1, 0, 2)",
        )
        .await
        .expect("re-create");
    let back = eventually(5, || {
        let ctx = Arc::clone(&ctx);
        async move { route_of_42(&ctx) == vec!["127.0.0.1:9702".to_string()] }
    })
    .await;
    assert!(back, "a re-created placement was not picked up: {:?}", route_of_42(&ctx));

    // A node added outside the proxy, and a table distributed outside it.
    direct
        .batch_execute("INSERT INTO pg_dist_node (nodeid, groupid, nodename, nodeport) VALUES (9, 3, '127.0.0.1', 9703)")
        .await
        .expect("add node");
    let added = eventually(10, || {
        let ctx = Arc::clone(&ctx);
        async move { ctx.metadata.topology().as_ref().is_some_and(|t| t.nodes().iter().any(|n| n.addr() == "127.0.0.1:9703")) }
    })
    .await;
    assert!(added, "the node added outside the proxy was not picked up");
    direct
        .batch_execute("CREATE TABLE outside_t (k int); SELECT create_distributed_table('outside_t', 'k')")
        .await
        .expect("distribute outside");
    let distributed = eventually(10, || {
        let ctx = Arc::clone(&ctx);
        async move { ctx.metadata.topology().as_ref().is_some_and(|t| t.table_by_name("public", "outside_t").is_some()) }
    })
    .await;
    assert!(distributed, "the table distributed outside the proxy was not picked up");
    proxy.stop().await;
}

#[tokio::test]
async fn each_database_routes_on_its_own_catalog() {
    let cluster = test_support::citus();
    let main_url = cluster.private_copy("citus_perdb_main");
    // A second Citus database where shard 102035 lives on the other worker.
    let other_url = cluster.private_copy("citus_perdb_other");
    test_support::connect(&other_url)
        .await
        .batch_execute("UPDATE pg_dist_placement SET groupid = 1 WHERE shardid = 102035")
        .await
        .expect("move in the other database");
    // A plain PostgreSQL database with its own table and a view named like a Citus table.
    let plain_url = test_support::postgres().fresh_database("plain_perdb");
    test_support::connect(&plain_url)
        .await
        .batch_execute("CREATE TABLE plain_only (x int); CREATE VIEW users AS SELECT 42::bigint AS user_id, 'v'::text AS username")
        .await
        .expect("plain schema");

    let proxy = Proxy::start_on(&main_url, &[("metadata.refresh_interval", "0s")]).await;
    let main = reporting(&proxy.url("citus_perdb_main")).await;
    let other = reporting(&proxy.url("citus_perdb_other")).await;
    let plain = reporting(&proxy.url("plain_perdb")).await;

    // The first session of a database starts loading its snapshot; wait for it (bounded).
    let ctx = Arc::clone(&proxy.ctx);
    let loaded = eventually(10, || {
        let ctx = Arc::clone(&ctx);
        async move {
            let all = ctx.stores.all();
            ["citus_perdb_other", "plain_perdb"].iter().all(|db| all.iter().any(|s| s.database() == *db && s.age().is_some()))
        }
    })
    .await;
    assert!(loaded, "the other databases' snapshots never loaded");
    // A client that never gets in (no such database) makes no snapshot.
    assert!(tokio_postgres::connect(&proxy.url("no_such_db_perdb"), tokio_postgres::NoTls).await.is_err());
    assert!(!ctx.stores.all().iter().any(|s| s.database() == "no_such_db_perdb"), "a database nobody got into has no snapshot");

    let r = route_of(&main, "SELECT * FROM users WHERE user_id = 42").await;
    assert!(route_word(&r) == "single-shard" && r.contains("127.0.0.1:9702"), "main database: {r}");
    let r = route_of(&other, "SELECT * FROM users WHERE user_id = 42").await;
    assert!(route_word(&r) == "single-shard" && r.contains("127.0.0.1:9701"), "other database, its own placement: {r}");

    let r = route_of(&plain, "SELECT * FROM plain_only").await;
    assert_eq!(route_word(&r), "local", "a table of a plain database is local there, not unknown: {r}");
    let r = route_of(&plain, "SELECT * FROM users WHERE user_id = 42").await;
    assert_eq!(route_word(&r), "unknown", "users is a view in that database: {r}");
    assert!(r.contains("view"), "{r}");
    // The upstream URL's database has no such table (the statement fails there).
    let r = notice_of(&main, "SELECT * FROM plain_only", false).await;
    assert_eq!(route_word(&r), "unknown", "{r}");

    // A Citus function in the other database refreshes that database's snapshot.
    let moved = "SELECT citus_move_shard_placement(102035, '127.0.0.1', 9701, '127.0.0.1', 9702)";
    other.client.simple_query(moved).await.expect("move back");
    let r = route_of(&other, "SELECT * FROM users WHERE user_id = 42").await;
    assert!(r.contains("127.0.0.1:9702"), "the other database after its own move: {r}");
    proxy.stop().await;
}
