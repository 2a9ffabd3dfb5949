//! The result cache's counters (kept as atomics by the cache crate) copied into Prometheus
//! before each scrape, under the names docs/metrics.md lists.

use citus_proxy_cache::CacheStats;

use super::ProxyMetrics;

pub fn export(m: &ProxyMetrics, s: &CacheStats) {
    let tier = |t: &str| [("tier", t.to_string())];
    m.counter_with("citus_proxy_cache_hits_total", &tier("memory")).absolute(s.hits_memory);
    m.counter_with("citus_proxy_cache_hits_total", &tier("redis")).absolute(s.hits_redis);
    m.counter_with("citus_proxy_cache_misses_total", &[]).absolute(s.misses);
    m.counter_with("citus_proxy_cache_stores_total", &tier("memory")).absolute(s.stores_memory);
    m.counter_with("citus_proxy_cache_stores_total", &tier("redis")).absolute(s.stores_redis);
    m.counter_with("citus_proxy_cache_evictions_total", &tier("memory")).absolute(s.evictions_memory);
    m.counter_with("citus_proxy_cache_expirations_total", &tier("memory")).absolute(s.expirations_memory);
    m.gauge("citus_proxy_cache_bytes", &tier("memory")).set(s.memory_bytes as f64);
    m.gauge("citus_proxy_cache_entries", &tier("memory")).set(s.memory_entries as f64);
    m.counter_with("citus_proxy_cache_invalidations_total", &[]).absolute(s.invalidations);
    m.counter_with("citus_proxy_cache_invalidation_failures_total", &[]).absolute(s.invalidation_failures);
    m.gauge("citus_proxy_cache_pending_invalidations", &[]).set(s.pending_invalidations as f64);
    m.counter_with("citus_proxy_cache_redis_resets_total", &[]).absolute(s.redis_resets);
    for (reason, n) in &s.bypass {
        m.counter_with("citus_proxy_cache_bypass_total", &[("reason", reason.to_string())]).absolute(*n);
    }
}
