//! Housekeeping of idle server connections, once a second: idle timeout, lifetime, min size.

use std::sync::Arc;
use std::time::Duration;

use crate::context::Context;
use crate::shutdown::{reached, Phase};

pub async fn run(ctx: Arc<Context>, mut phase: tokio::sync::watch::Receiver<Phase>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => ctx.pools.sweep(&ctx).await,
            _ = reached(&mut phase, Phase::Closing) => break,
        }
    }
    ctx.pools.close_all().await;
}
