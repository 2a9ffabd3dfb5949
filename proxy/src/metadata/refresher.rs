//! The refresh loop of one database's snapshot: a full load, then a cheap fingerprint probe every
//! `probe_interval` over a connection kept open, and the next full load only when the fingerprint
//! changed, a refresh was requested, or `refresh_interval` (the safety net) has passed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::debug;

use super::{Fingerprint, Loader, MetadataStore};
use crate::metrics::ProxyMetrics;
use crate::shutdown::{reached, Phase};

/// How often the catalog is looked at (`metadata.*` keys); zero turns either off.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Full reload regardless of the probe.
    pub refresh_interval: Duration,
    /// Change probe.
    pub probe_interval: Duration,
}

/// While there is no snapshot at all, try again this often.
const RETRY_EMPTY: Duration = Duration::from_secs(1);

/// Why the loop leaves its waiting state.
enum Wake {
    Load,
    Close,
}

impl MetadataStore {
    /// Keeps this store fresh until the proxy closes.
    pub async fn run_refresher(
        self: Arc<Self>,
        loader: Loader,
        metrics: Arc<ProxyMetrics>,
        timing: Timing,
        mut phase: watch::Receiver<Phase>,
    ) {
        let mut conn: Option<tokio_postgres::Client> = None;
        let mut citus = true;
        loop {
            let seen = self.requested.load(Ordering::SeqCst);
            if conn.as_ref().is_none_or(|c| c.is_closed()) {
                conn = match loader.connect().await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let _ = self.record(Err(e), &metrics);
                        None
                    }
                };
            }
            let mut fingerprint = None;
            if let Some(c) = &conn {
                // Read before the load: a change made during the load shows at the next probe.
                let before = loader.fingerprint(c, citus).await.ok();
                match self.record(loader.load_with(c).await, &metrics) {
                    Ok(is_citus) => {
                        // A fingerprint of the other kind of catalog cannot be compared.
                        fingerprint = before.filter(|_| is_citus == citus);
                        citus = is_citus;
                    }
                    Err(_) => conn = None,
                }
            }
            self.finished(seen);
            let loaded_at = Instant::now();
            match self.wait_for_change(&loader, &mut conn, citus, fingerprint, loaded_at, timing, &mut phase).await {
                Wake::Load => {}
                Wake::Close => {
                    // Nobody loads any more: nothing may wait for a load.
                    self.finished(u64::MAX);
                    return;
                }
            }
        }
    }

    /// Sleeps and probes until a full load is due.
    #[allow(clippy::too_many_arguments)]
    async fn wait_for_change(
        &self,
        loader: &Loader,
        conn: &mut Option<tokio_postgres::Client>,
        citus: bool,
        mut fingerprint: Option<Fingerprint>,
        loaded_at: Instant,
        timing: Timing,
        phase: &mut watch::Receiver<Phase>,
    ) -> Wake {
        loop {
            let until_full = (!timing.refresh_interval.is_zero())
                .then(|| timing.refresh_interval.saturating_sub(loaded_at.elapsed()).max(Duration::from_millis(1)));
            let wait = if self.age().is_none() {
                Some(RETRY_EMPTY)
            } else {
                match (timing.probe_interval.is_zero(), until_full) {
                    (true, u) => u,
                    (false, None) => Some(timing.probe_interval),
                    (false, Some(u)) => Some(timing.probe_interval.min(u)),
                }
            };
            tokio::select! {
                _ = self.wake.notified() => return Wake::Load,
                _ = sleep_or_forever(wait) => {}
                _ = reached(phase, Phase::Closing) => return Wake::Close,
            }
            if self.age().is_none() || until_full.is_some_and(|_| loaded_at.elapsed() >= timing.refresh_interval) {
                return Wake::Load;
            }
            if timing.probe_interval.is_zero() {
                continue;
            }
            let Some(c) = conn.as_ref().filter(|c| !c.is_closed()) else {
                // The coordinator was unreachable: reconnect quietly, load once it answers.
                match loader.connect().await {
                    Ok(c) => {
                        *conn = Some(c);
                        return Wake::Load;
                    }
                    Err(e) => {
                        debug!(error = %e, database = %self.database, "metadata probe cannot connect");
                        continue;
                    }
                }
            };
            match loader.fingerprint(c, citus).await {
                Ok(now) if fingerprint.as_ref() == Some(&now) => {}
                Ok(now) if fingerprint.is_none() => fingerprint = Some(now),
                Ok(_) => {
                    debug!(database = %self.database, "catalog changed; reloading");
                    return Wake::Load;
                }
                Err(e) => {
                    debug!(error = %e, database = %self.database, "metadata probe failed; reloading");
                    *conn = None;
                    return Wake::Load;
                }
            }
        }
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
}
