//! Background upkeep while Redis is configured.

use std::sync::Weak;
use std::time::Duration;

use crate::facade::Inner;

/// Background upkeep with Redis: replays failed invalidations, so other instances learn of them
/// soon, not only when this one next reads.
pub(crate) async fn run(inner: Weak<Inner>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(redis) = &inner.redis else { return };
        inner.replay_pending(redis).await;
    }
}
