//! The current cluster snapshot: loaded at start, refreshed on an interval, after statements
//! that change Citus metadata, and on demand; swapped atomically so no statement waits on a
//! refresh. A failed refresh keeps the last good snapshot and says so in logs and metrics.

mod gauges;
pub mod loader;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use citus_proxy_router::Topology;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::metrics::ProxyMetrics;
use crate::shutdown::{reached, Phase};
pub use loader::{Loader, MetadataError};

pub struct MetadataStore {
    current: ArcSwapOption<Topology>,
    /// Milliseconds since `epoch` of the last successful load, plus one (0 = never).
    loaded_at: AtomicU64,
    epoch: Instant,
    wake: Notify,
    last_error: Mutex<Option<String>>,
    loads: AtomicU64,
}

impl Default for MetadataStore {
    fn default() -> Self {
        MetadataStore {
            current: ArcSwapOption::empty(),
            loaded_at: AtomicU64::new(0),
            epoch: Instant::now(),
            wake: Notify::new(),
            last_error: Mutex::new(None),
            loads: AtomicU64::new(0),
        }
    }
}

impl MetadataStore {
    /// The current snapshot (cheap: no lock, no copy).
    pub fn topology(&self) -> arc_swap::Guard<Option<Arc<Topology>>> {
        self.current.load()
    }

    pub fn install(&self, t: Topology) {
        self.current.store(Some(Arc::new(t)));
        self.loaded_at.store(self.epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        self.loads.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
    }

    /// Asks the refresher to reload now (after DDL or a Citus function, or RELOAD).
    pub fn request_refresh(&self) {
        self.wake.notify_one();
    }

    /// Time since the last successful load.
    pub fn age(&self) -> Option<Duration> {
        match self.loaded_at.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch.elapsed().saturating_sub(Duration::from_millis(ms - 1))),
        }
    }

    /// Successful loads so far.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Loads once, recording success or failure.
    pub async fn refresh(&self, loader: &Loader, metrics: &ProxyMetrics) -> Result<(), MetadataError> {
        match loader.load().await {
            Ok(t) => {
                gauges::update(metrics, &t);
                let (tables, nodes) = (t.tables().len(), t.nodes().len());
                for w in t.warnings() {
                    warn!(warning = %w, "metadata");
                }
                self.install(t);
                info!(tables, nodes, "metadata loaded");
                Ok(())
            }
            Err(e) => {
                metrics.counter("citus_proxy_metadata_refresh_errors_total").increment(1);
                warn!(error = %e, kept = self.age().is_some(), "metadata refresh failed; keeping the last good snapshot");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Refreshes every `interval` (0 = only on request) and whenever asked, until closing.
    pub async fn run_refresher(
        self: Arc<Self>,
        loader: Loader,
        metrics: Arc<ProxyMetrics>,
        interval: Duration,
        mut phase: watch::Receiver<Phase>,
    ) {
        loop {
            let _ = self.refresh(&loader, &metrics).await;
            // Retry sooner while there is no snapshot at all.
            let wait = if self.age().is_none() { Duration::from_secs(1) } else { interval };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = sleep_or_forever(wait) => {}
                _ = reached(&mut phase, Phase::Closing) => return,
            }
        }
    }
}

async fn sleep_or_forever(d: Duration) {
    if d.is_zero() {
        std::future::pending::<()>().await
    } else {
        tokio::time::sleep(d).await
    }
}
