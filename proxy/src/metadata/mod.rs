//! Cluster snapshots, one per database a client uses: loaded at start (the upstream URL's
//! database) or on the first session of another database, kept fresh by a cheap change probe
//! (a full reload only when the catalog changed), re-read on an interval as a safety net, after
//! statements that change Citus metadata, and on demand; swapped atomically so no statement waits
//! on a refresh. A failed refresh keeps the last good snapshot and says so in logs and metrics.

mod gauges;
pub mod loader;
mod refresher;
mod stores;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use citus_proxy_router::Topology;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::metrics::ProxyMetrics;
pub use loader::{Fingerprint, Loader, MetadataError};
pub use refresher::Timing;
pub use stores::{MetadataStores, SessionMetadata};

/// One database's snapshot and its refresh state.
pub struct MetadataStore {
    database: String,
    /// Only the upstream URL's database exports the cluster gauges (nodes and placements are the
    /// cluster's; one exporter keeps the existing metric names unambiguous).
    gauges: bool,
    current: ArcSwapOption<Topology>,
    /// Milliseconds since `epoch` of the last successful load, plus one (0 = never).
    loaded_at: AtomicU64,
    epoch: Instant,
    wake: Notify,
    last_error: Mutex<Option<String>>,
    loads: AtomicU64,
    /// Refresh requests so far; the refresher publishes in `done` the count it had seen when its
    /// last load began, so a requester knows when a load started after its request has finished.
    requested: AtomicU64,
    done: watch::Sender<u64>,
}

impl Default for MetadataStore {
    fn default() -> Self {
        MetadataStore::new("", true)
    }
}

impl MetadataStore {
    pub fn new(database: &str, gauges: bool) -> Self {
        MetadataStore {
            database: database.to_string(),
            gauges,
            current: ArcSwapOption::empty(),
            loaded_at: AtomicU64::new(0),
            epoch: Instant::now(),
            wake: Notify::new(),
            last_error: Mutex::new(None),
            loads: AtomicU64::new(0),
            requested: AtomicU64::new(0),
            done: watch::Sender::new(0),
        }
    }

    /// The database this snapshot describes.
    pub fn database(&self) -> &str {
        &self.database
    }

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
        self.requested.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Asks for a reload and resolves once a load that began after this call has finished
    /// (successfully or not). Bounded by `limit`, so a session never hangs on a stuck catalog.
    pub fn refreshed(&self, limit: Duration) -> impl Future<Output = ()> + Send + 'static {
        let want = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        self.wake.notify_one();
        async move {
            let _ = tokio::time::timeout(limit, done.wait_for(|d| *d >= want)).await;
        }
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

    /// Loads once over a new connection, recording success or failure (RELOAD).
    pub async fn refresh(&self, loader: &Loader, metrics: &ProxyMetrics) -> Result<(), MetadataError> {
        let loaded = match loader.connect().await {
            Ok(client) => loader.load_with(&client).await,
            Err(e) => Err(e),
        };
        self.record(loaded, metrics).map(|_| ())
    }

    /// Installs a load's result, or counts and logs its failure; returns whether the database
    /// has the Citus catalog.
    fn record(&self, loaded: Result<(Topology, bool), MetadataError>, metrics: &ProxyMetrics) -> Result<bool, MetadataError> {
        match loaded {
            Ok((t, citus)) => {
                if self.gauges {
                    gauges::update(metrics, &t);
                }
                let (tables, nodes) = (t.tables().len(), t.nodes().len());
                for w in t.warnings() {
                    warn!(warning = %w, database = %self.database, "metadata");
                }
                self.install(t);
                info!(tables, nodes, database = %self.database, "metadata loaded");
                Ok(citus)
            }
            Err(e) => {
                metrics.counter("citus_proxy_metadata_refresh_errors_total").increment(1);
                warn!(error = %e, database = %self.database, kept = self.age().is_some(), "metadata refresh failed; keeping the last good snapshot");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Publishes that every request counted up to `seen` has had its load.
    fn finished(&self, seen: u64) {
        self.done.send_if_modified(|d| {
            let newer = seen > *d;
            if newer {
                *d = seen;
            }
            newer
        });
    }
}
