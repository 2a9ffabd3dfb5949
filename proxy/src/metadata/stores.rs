//! One snapshot per database: the upstream URL's database is loaded at start; any other is
//! loaded lazily when its first session begins, by a loader for the same coordinator,
//! credentials and TLS with the database swapped, and refreshed the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::watch;
use tracing::warn;

use super::{Loader, MetadataStore, Timing};
use crate::metrics::ProxyMetrics;
use crate::shutdown::Phase;

/// Databases with their own snapshot beyond this many share an empty one (every table unknown):
/// client-chosen names must not grow the proxy without bound.
const MAX_DATABASES: usize = 256;

/// What a refresher needs, known once the server runs.
struct Runner {
    metrics: Arc<ProxyMetrics>,
    timing: Timing,
    phase: watch::Receiver<Phase>,
}

pub struct MetadataStores {
    default: Arc<MetadataStore>,
    /// None when routing is off: nothing is loaded.
    loader: Option<Loader>,
    others: Mutex<HashMap<String, Arc<MetadataStore>>>,
    /// Shared by databases past `MAX_DATABASES`; never loaded.
    overflow: Arc<MetadataStore>,
    runner: OnceLock<Runner>,
}

impl MetadataStores {
    pub fn new(loader: Option<Loader>) -> MetadataStores {
        let database = loader.as_ref().map_or("", Loader::database);
        let overflow = Arc::new(MetadataStore::new("", false));
        // Never loaded: a session there must not wait for a load.
        overflow.finished(u64::MAX);
        MetadataStores {
            default: Arc::new(MetadataStore::new(database, true)),
            loader,
            others: Mutex::new(HashMap::new()),
            overflow,
            runner: OnceLock::new(),
        }
    }

    /// The upstream URL's database (admin SHOW CLUSTER, RELOAD, readiness, gauges).
    pub fn default_store(&self) -> &Arc<MetadataStore> {
        &self.default
    }

    /// The snapshot of `database`, created (and its refresher started) on first use.
    pub fn for_database(&self, database: &str) -> Arc<MetadataStore> {
        if database.is_empty() || database == self.default.database() {
            return Arc::clone(&self.default);
        }
        let Some(loader) = &self.loader else { return Arc::clone(&self.default) };
        let Ok(mut others) = self.others.lock() else { return Arc::clone(&self.overflow) };
        if let Some(s) = others.get(database) {
            return Arc::clone(s);
        }
        if others.len() >= MAX_DATABASES {
            warn!(database, limit = MAX_DATABASES, "too many databases for per-database metadata; its tables route as unknown");
            return Arc::clone(&self.overflow);
        }
        let store = Arc::new(MetadataStore::new(database, false));
        others.insert(database.to_string(), Arc::clone(&store));
        if let Some(r) = self.runner.get() {
            spawn(&store, loader.for_database(database), r);
        }
        store
    }

    /// Starts the refreshers (the default database's first); returns the default one's task.
    /// Stores made later start theirs when created. Call once, inside the runtime.
    pub fn start(&self, metrics: Arc<ProxyMetrics>, timing: Timing, phase: watch::Receiver<Phase>) -> Option<tokio::task::JoinHandle<()>> {
        let loader = self.loader.as_ref()?;
        let runner = Runner { metrics, timing, phase };
        let handle = spawn(&self.default, loader.clone(), &runner);
        if let Ok(others) = self.others.lock() {
            for (db, s) in others.iter() {
                spawn(s, loader.for_database(db), &runner);
            }
            // Set while holding the lock: a store created meanwhile is started exactly once.
            let _ = self.runner.set(runner);
        }
        Some(handle)
    }

    /// Every database with a snapshot, the default first.
    pub fn all(&self) -> Vec<Arc<MetadataStore>> {
        let mut out = vec![Arc::clone(&self.default)];
        if let Ok(others) = self.others.lock() {
            let mut more: Vec<_> = others.values().cloned().collect();
            more.sort_by(|a, b| a.database().cmp(b.database()));
            out.extend(more);
        }
        out
    }
}

fn spawn(store: &Arc<MetadataStore>, loader: Loader, r: &Runner) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Arc::clone(store).run_refresher(loader, Arc::clone(&r.metrics), r.timing, r.phase.clone()))
}

/// A session's way to its database's snapshot, resolved on first use: sessions are created
/// before the client has authenticated, and only an authenticated client's database may get a
/// snapshot (and a refresher) of its own.
pub struct SessionMetadata {
    stores: Arc<MetadataStores>,
    database: String,
    store: std::cell::OnceCell<Arc<MetadataStore>>,
}

impl SessionMetadata {
    pub fn new(stores: Arc<MetadataStores>, database: &str) -> SessionMetadata {
        SessionMetadata { stores, database: database.to_string(), store: std::cell::OnceCell::new() }
    }

    /// The session database's store (created and started the first time).
    pub fn store(&self) -> &Arc<MetadataStore> {
        self.store.get_or_init(|| self.stores.for_database(&self.database))
    }
}
