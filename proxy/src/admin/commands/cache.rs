//! SHOW CACHE and FLUSH CACHE.

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["name", "value"]);
    let Some(cache) = &ctx.cache else {
        let why = if ctx.config.routing.enabled { "off (cache.enabled = false)" } else { "off (routing.enabled = false)" };
        rs.row(vec![v("state"), v(why)]);
        return rs;
    };
    let s = cache.stats();
    let redis = match s.redis_breaker {
        None => "not configured".to_string(),
        Some(state) => format!("breaker {state}"),
    };
    let mut row = |name: &str, value: String| rs.row(vec![v(name), v(&value)]);
    row("state", "on".into());
    row("redis", redis);
    row("memory_entries", s.memory_entries.to_string());
    row("memory_bytes", s.memory_bytes.to_string());
    row("memory_max_bytes", s.memory_max_bytes.to_string());
    row("hits_memory", s.hits_memory.to_string());
    row("hits_redis", s.hits_redis.to_string());
    row("misses", s.misses.to_string());
    row("stores_memory", s.stores_memory.to_string());
    row("stores_redis", s.stores_redis.to_string());
    row("evictions_memory", s.evictions_memory.to_string());
    row("expirations_memory", s.expirations_memory.to_string());
    row("invalidations", s.invalidations.to_string());
    row("invalidation_failures", s.invalidation_failures.to_string());
    row("redis_resets", s.redis_resets.to_string());
    row("pending_invalidations", s.pending_invalidations.to_string());
    row("fills_in_flight", s.fills_in_flight.to_string());
    for (reason, n) in &s.bypass {
        row(&format!("bypass_{reason}"), n.to_string());
    }
    rs
}

pub async fn flush(ctx: &Context) -> Result<ResultSet, String> {
    let Some(cache) = &ctx.cache else { return Err("the result cache is off on this proxy".into()) };
    cache.flush().await;
    let mut rs = ResultSet::new(&["flushed"]);
    rs.row(vec![v("this instance, and every instance sharing its Redis")]);
    Ok(rs)
}
