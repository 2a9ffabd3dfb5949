//! Shard-local routing (issue #13) when nodes fail or shards move: a node that is down or refuses
//! → its keys are answered by the coordinator (right rows, `citus_proxy_node_fallbacks_total`
//! rises); a moved shard → the next metadata refresh routes to the new node; a node killed
//! mid-transaction → the client gets an error, never a silent replay elsewhere, and goes on.
//! These tests stop servers or rewrite pg_dist_*: against a real cluster (CITUS_PROXY_TEST_CITUS)
//! they fail with a message saying to unset it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::time::{Duration, Instant};

use common::nodes::{
    assert_tx_on, by_node, client, hint_absent, shard_local_proxy, simple_one, simple_rows, tx_on_user, users_on, FALLBACKS,
};
use common::pool::within;
use test_support::{citus_nodes, citus_nodes_with_disposable};

/// Idle server connections are checked before use, so a dead one is noticed before a statement
/// is sent on it (the fallback, not an error, is what these tests look at).
const CHECK_ALWAYS: (&str, &str) = ("pool.server_check_delay", "0s");

#[tokio::test]
async fn a_stopped_node_is_replaced_by_the_coordinator() {
    let cluster = citus_nodes_with_disposable("slf_stopped");
    let p = shard_local_proxy(&cluster, &[CHECK_ALWAYS]).await;
    let c = client(&p, &cluster).await;
    let (g1, g2) = (users_on(&cluster, 1, 30), users_on(&cluster, 2, 30));
    assert_tx_on(&c, g2[0], cluster.node(2), "before the stop").await;
    let dead = cluster.node(2).addr();
    cluster.stop_node(2);
    for &k in &g2 {
        let (names, port) = within(30, "a transaction after the node stopped", tx_on_user(&c, k)).await;
        assert_eq!(names, vec![format!("user{k}")], "user {k} answered after its node stopped (port {port})");
        assert_eq!(port, cluster.coordinator.port, "user {k}: its node is down, the coordinator answers");
    }
    for &k in &g1 {
        assert_tx_on(&c, k, cluster.node(1), "the other node is unaffected").await;
    }
    // Autocommit statements fall back too.
    let k = g2[1];
    let name: String = c.query_one("SELECT username FROM users WHERE user_id = $1", &[&k]).await.expect("autocommit").get(0);
    assert_eq!(name, format!("user{k}"));
    let fell = by_node(&p, FALLBACKS);
    assert!(fell.get(&dead).copied().unwrap_or(0.0) >= 1.0, "{FALLBACKS}{{node=\"{dead}\"}} did not rise: {fell:?}{}", hint_absent());
    assert_eq!(fell.get(&cluster.node(1).addr()).copied().unwrap_or(0.0), 0.0, "no fallback from the live node: {fell:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_node_row_pointing_at_a_dead_port_falls_back() {
    let cluster = citus_nodes("slf_dead_port");
    let dead = test_support::free_port();
    cluster.point_node_at(2, dead);
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    let g2 = users_on(&cluster, 2, 20);
    for &k in &g2 {
        let (names, port) = within(30, "a transaction whose node refuses", tx_on_user(&c, k)).await;
        assert_eq!((names, port), (vec![format!("user{k}")], cluster.coordinator.port), "user {k}: its node refuses connections");
    }
    assert_tx_on(&c, users_on(&cluster, 1, 20)[0], cluster.node(1), "the other node").await;
    let label = format!("{}:{dead}", cluster.node(2).host);
    let fell = by_node(&p, FALLBACKS);
    assert!(fell.get(&label).copied().unwrap_or(0.0) >= 1.0, "{FALLBACKS}{{node=\"{label}\"}} did not rise: {fell:?}{}", hint_absent());
    p.stop().await;
}

#[tokio::test]
async fn a_moved_shard_is_followed_after_the_next_refresh() {
    let cluster = citus_nodes("slf_moved");
    let p = shard_local_proxy(&cluster, &[("metadata.probe_interval", "1s")]).await;
    let c = client(&p, &cluster).await;
    let k = 42_i64;
    let (from, to) =
        (cluster.node_of_user(k).clone(), cluster.workers.iter().find(|n| n.group != cluster.node_of_user(k).group).unwrap().clone());
    assert_tx_on(&c, k, &from, "before the move").await;
    cluster.move_shard_of_user(k, to.group);
    assert_eq!(cluster.node_of_user(k).group, to.group);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (names, port) = tx_on_user(&c, k).await;
        if port == to.port {
            assert_eq!(names, vec![format!("user{k}")], "on the new node");
            break;
        }
        assert!(Instant::now() < deadline, "user {k} still goes to {} 20 s after its shard moved to {}", from.addr(), to.addr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The co-located keys of the same shard moved with it; other shards stayed.
    for j in 1..=60_i64 {
        assert_tx_on(&c, j, cluster.node_of_user(j), "after the move").await;
    }
    p.stop().await;
}

#[tokio::test]
async fn a_node_killed_mid_transaction_is_an_error_not_a_retry() {
    let cluster = citus_nodes_with_disposable("slf_killed");
    let p = shard_local_proxy(&cluster, &[CHECK_ALWAYS]).await;
    let c = client(&p, &cluster).await;
    let k = users_on(&cluster, 2, 20)[0];
    simple_rows(&c, "BEGIN").await;
    simple_rows(&c, &format!("UPDATE users SET username = 'killed-mid-tx' WHERE user_id = {k}")).await;
    assert_eq!(
        simple_one(&c, "SELECT inet_server_port()").await,
        cluster.node(2).port.to_string(),
        "the transaction is on the node{}",
        hint_absent()
    );
    cluster.stop_node(2);
    let r = within(30, "COMMIT after the node died", c.simple_query("COMMIT")).await;
    assert!(r.is_err(), "COMMIT of a transaction whose node died must fail, not be replayed elsewhere: {r:?}");
    // The update ran nowhere else: the coordinator's row is untouched.
    let direct = test_support::connect(&cluster.coordinator.url).await;
    let name: String = direct.query_one("SELECT username FROM users WHERE user_id = $1", &[&k]).await.unwrap().get(0);
    assert_eq!(name, format!("user{k}"), "the statement was retried on the coordinator");
    // The client goes on: its next transactions run (on the coordinator, the node being down).
    let _ = within(10, "ROLLBACK after the error", c.simple_query("ROLLBACK")).await;
    assert!(!c.is_closed(), "the client connection was closed; its next transaction must work on it");
    let (names, port) = within(30, "the next transaction", tx_on_user(&c, k)).await;
    assert_eq!((names, port), (vec![format!("user{k}")], cluster.coordinator.port), "the next transaction after the kill");
    p.stop().await;
}
