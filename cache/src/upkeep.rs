//! Background upkeep while Redis is configured.

use std::sync::Weak;
use std::time::Duration;

use crate::facade::Inner;

/// Background upkeep with Redis: replays failed invalidations (so other instances learn of them
/// soon, not only when this one next reads) and checks that Redis has not gone back in time (so
/// the in-process tier is dropped soon after a rollback even on an idle instance).
pub(crate) async fn run(inner: Weak<Inner>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        if inner.replay_pending(redis).await {
            inner.check_redis(redis).await;
        }
    }
}
