//! Background upkeep while Redis is configured.

use std::sync::Weak;
use std::time::Duration;

use crate::facade::Inner;
use crate::metrics::Tier;

/// Background upkeep with Redis: replays failed invalidations (so other instances learn of them
/// soon, not only when this one next reads) and samples Redis's memory and evictions.
pub(crate) async fn run(inner: Weak<Inner>, period: Duration) {
    let mut last_evicted: Option<u64> = None;
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        inner.replay_pending(redis).await;
        if redis.is_cluster() {
            continue;
        }
        if let Ok((used, evicted)) = redis.server_stats().await {
            inner.counters.bytes(Tier::Redis, used);
            if let Some(last) = last_evicted {
                inner.counters.redis_evicted(evicted.saturating_sub(last));
            }
            last_evicted = Some(evicted);
        }
    }
}
