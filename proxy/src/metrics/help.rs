//! The `# HELP` text of every metric the proxy records (the `process_*` ones are written with
//! theirs in process.rs) (docs/metrics.md says the same). A metric
//! without a line here still works, but proxy/tests/metrics_exposition.rs fails.

use metrics::{KeyName, Recorder};
use metrics_exporter_prometheus::PrometheusRecorder;

#[derive(Clone, Copy)]
enum Type {
    Counter,
    Gauge,
    Histogram,
}
use Type::{Counter, Gauge, Histogram};

const HELP: &[(&str, Type, &str)] = &[
    ("citus_proxy_build_info", Gauge, "Always 1; the labels say which build is running."),
    ("citus_proxy_query_duration_seconds", Histogram, "Statement latency, first message to ReadyForQuery, by route and class."),
    ("citus_proxy_queries_total", Counter, "Statements completed, by route and class."),
    ("citus_proxy_slo_target_seconds", Gauge, "The configured latency target of each class."),
    ("citus_proxy_slo_violations_total", Counter, "Statements slower than their class's target."),
    ("citus_proxy_slo_latency_seconds", Gauge, "Latency percentile of each class over the sliding window."),
    ("citus_proxy_client_connections", Gauge, "Clients connected."),
    ("citus_proxy_upstream_connections", Gauge, "Connections to the coordinator."),
    ("citus_proxy_bytes_total", Counter, "Bytes relayed, by direction."),
    ("citus_proxy_errors_total", Counter, "ErrorResponses relayed, by the SQLSTATE's first two characters."),
    ("citus_proxy_upstream_connect_seconds", Histogram, "Time to connect to the coordinator."),
    ("citus_proxy_pool_wait_seconds", Histogram, "Time a client waited for a pooled server connection (pool.mode session or transaction)."),
    ("citus_proxy_pool_server_connections_opened_total", Counter, "Pooled server connections opened."),
    ("citus_proxy_pool_checkouts_total", Counter, "Pooled server connections handed to a client."),
    ("citus_proxy_pool_server_connections", Gauge, "Pooled server connections, by pool and state (active, idle, login)."),
    ("citus_proxy_pool_clients", Gauge, "Clients of each pool, by state (active, waiting)."),
    ("citus_proxy_pool_size", Gauge, "The configured pool.size."),
    ("citus_proxy_served_total", Counter, "Pooled transactions by the server that ran them (coordinator or node host:port)."),
    (
        "citus_proxy_node_fallbacks_total",
        Counter,
        "Transactions placed on a node that went to the coordinator because the node refused or was down.",
    ),
    ("citus_proxy_oldest_statement_seconds", Gauge, "Age of the longest-running statement in flight."),
    ("citus_proxy_metadata_age_seconds", Gauge, "Seconds since the last successful metadata load."),
    ("citus_proxy_metadata_refresh_errors_total", Counter, "Failed metadata loads."),
    ("citus_proxy_cluster_nodes", Gauge, "Nodes in pg_dist_node, by state."),
    ("citus_proxy_cluster_shards", Gauge, "Shard placements per node."),
    ("citus_proxy_cluster_shard_imbalance", Gauge, "Max over mean shards per node, per table."),
    ("citus_proxy_cache_hits_total", Counter, "Statements answered from the result cache, by tier."),
    ("citus_proxy_cache_misses_total", Counter, "Cacheable statements that went to the coordinator."),
    ("citus_proxy_cache_stores_total", Counter, "Responses stored in the result cache, by tier."),
    ("citus_proxy_cache_evictions_total", Counter, "Entries the in-process tier dropped to make room (expiry is counted apart)."),
    ("citus_proxy_cache_expirations_total", Counter, "Entries the in-process tier dropped because their TTL passed."),
    ("citus_proxy_cache_bytes", Gauge, "Bytes charged to the in-process tier."),
    ("citus_proxy_cache_entries", Gauge, "Entries in the in-process tier."),
    ("citus_proxy_cache_invalidations_total", Counter, "Writes that invalidated cached results (per write scope)."),
    ("citus_proxy_cache_invalidation_failures_total", Counter, "Invalidations Redis could not be told of at once (replayed later)."),
    (
        "citus_proxy_cache_redis_resets_total",
        Counter,
        "Times this instance found Redis rolled back or emptied and started a new cache epoch.",
    ),
    ("citus_proxy_cache_pending_invalidations", Gauge, "Invalidations still to be replayed to Redis."),
    ("citus_proxy_cache_bypass_total", Counter, "Statements not served from or stored in the cache, by reason."),
];

/// Gives every known metric its `# HELP` line.
pub fn describe(recorder: &PrometheusRecorder) {
    for (name, kind, text) in HELP {
        let (name, text) = (KeyName::from_const_str(name), (*text).into());
        match kind {
            Counter => recorder.describe_counter(name, None, text),
            Gauge => recorder.describe_gauge(name, None, text),
            Histogram => recorder.describe_histogram(name, None, text),
        }
    }
}
