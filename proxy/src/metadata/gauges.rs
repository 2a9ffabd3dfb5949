//! Cluster gauges from a fresh snapshot: nodes by state, shard placements per node, imbalance.

use std::collections::HashMap;

use citus_proxy_router::Topology;

use crate::metrics::ProxyMetrics;

pub fn update(metrics: &ProxyMetrics, t: &Topology) {
    metrics.gauge("citus_proxy_cluster_nodes", &[("state", "active".into())]).set(t.active_nodes().count() as f64);
    metrics.gauge("citus_proxy_cluster_nodes", &[("state", "inactive".into())]).set(t.inactive_nodes().count() as f64);
    for (node, n) in t.shards_per_node() {
        metrics.gauge("citus_proxy_cluster_shards", &[("node", node.to_string())]).set(n as f64);
    }
    for table in t.tables() {
        if table.shards.len() < 2 {
            continue;
        }
        let mut per_node: HashMap<usize, usize> = HashMap::new();
        for shard in &table.shards {
            for n in &shard.nodes {
                *per_node.entry(*n).or_default() += 1;
            }
        }
        if per_node.is_empty() {
            continue;
        }
        let max = per_node.values().copied().max().unwrap_or(0) as f64;
        let mean = per_node.values().sum::<usize>() as f64 / per_node.len() as f64;
        let imbalance = if mean > 0.0 { max / mean } else { 0.0 };
        metrics.gauge("citus_proxy_cluster_shard_imbalance", &[("table", format!("{}.{}", table.schema, table.name))]).set(imbalance);
    }
}
