//! Helpers for the shard-local routing tests: a pooled proxy in front of a multi-node cluster
//! (test_support::citus_nodes), transactions that report where they ran, and the per-node metrics.

use std::collections::BTreeMap;

use test_support::{CitusNode, NodeCluster};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::Proxy;

/// Transaction pooling with shard-local routing on, trust authentication, and `extra` on top.
pub async fn shard_local_proxy(cluster: &NodeCluster, extra: &[(&'static str, &str)]) -> Proxy {
    let mut s: Vec<(&'static str, &str)> = vec![("pool.mode", "transaction"), ("auth.type", "trust"), ("routing.shard_local", "true")];
    s.extend_from_slice(extra);
    proxy_on(cluster, &s).await
}

/// A proxy whose upstream is the cluster's coordinator, with exactly `settings`.
pub async fn proxy_on(cluster: &NodeCluster, settings: &[(&'static str, &str)]) -> Proxy {
    super::pool::init_logs();
    Proxy::start_on(&cluster.coordinator.url, settings).await
}

/// A client of the harness superuser through `p` on the cluster's database.
pub async fn client(p: &Proxy, cluster: &NodeCluster) -> Client {
    super::pool::connect_db(p, &cluster.database).await
}

/// Rows of a simple query as text values.
pub async fn simple_rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let msgs = super::pool::within(20, sql, c.simple_query(sql)).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

/// The one value of a simple query.
pub async fn simple_one(c: &Client, sql: &str) -> String {
    let rows = simple_rows(c, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: one row expected, got {rows:?}");
    rows[0].first().cloned().flatten().unwrap_or_else(|| panic!("{sql}: NULL"))
}

/// Where a transaction ran and what it read: `BEGIN`, the single-shard select of `user_id`, then
/// `SELECT inet_server_port()`, `COMMIT` — each its own simple Query, as a driver sends them.
/// Returns (usernames read, server port).
pub async fn tx_on_user(c: &Client, user_id: i64) -> (Vec<String>, u16) {
    simple_rows(c, "BEGIN").await;
    let names = simple_rows(c, &format!("SELECT username FROM users WHERE user_id = {user_id}")).await;
    let port = simple_one(c, "SELECT inet_server_port()").await;
    simple_rows(c, "COMMIT").await;
    (names.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect(), port.parse().expect("a port"))
}

/// Asserts that a transaction on `user_id` ran on `node` and read the user's row.
pub async fn assert_tx_on(c: &Client, user_id: i64, node: &CitusNode, what: &str) {
    let (names, port) = tx_on_user(c, user_id).await;
    assert_eq!(
        port,
        node.port,
        "{what}: the transaction on user {user_id} ran on port {port}, expected {} (group {}){}",
        node.addr(),
        node.group,
        hint_absent()
    );
    assert_eq!(names, vec![format!("user{user_id}")], "{what}: user {user_id}'s row as read on port {port}");
}

/// Users of `group` among 1..=`upto`, by the coordinator's metadata.
pub fn users_on(cluster: &NodeCluster, group: i32, upto: i64) -> Vec<i64> {
    (1..=upto).filter(|&k| cluster.group_of("users", k) == group).collect()
}

/// The metrics text of an in-process proxy.
pub fn metrics(p: &Proxy) -> String {
    // As a scrape does: the computed values first.
    p.ctx.update_computed_gauges();
    p.ctx.metrics.render(&p.ctx.sessions)
}

/// Samples of `family` by their `node` label (summed over other labels).
pub fn by_node(p: &Proxy, family: &str) -> BTreeMap<String, f64> {
    let text = metrics(p);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(family).and_then(|r| r.strip_prefix('{')) else { continue };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let Some(node) = labels.split(',').find_map(|l| l.trim().strip_prefix("node=\"")).and_then(|v| v.strip_suffix('"')) else {
            continue;
        };
        *out.entry(node.to_string()).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

pub const SERVED: &str = "citus_proxy_served_total";
pub const FALLBACKS: &str = "citus_proxy_node_fallbacks_total";

/// The metric label of a node: `coordinator` for group 0, else `host:port`.
pub fn label(node: &CitusNode) -> String {
    if node.group == 0 {
        "coordinator".to_string()
    } else {
        node.addr()
    }
}

/// How much each node's `citus_proxy_served_total` rose between two readings.
pub fn rise(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0))).filter(|(_, d)| *d > 0.0).collect()
}

/// Said in failures that can only mean the feature is missing or broken.
pub fn hint_absent() -> &'static str {
    " (shard-local routing, issue #13: routing.shard_local must send single-shard transactions to the node holding the shard)"
}
