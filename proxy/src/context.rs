//! What every session shares: configuration, upstream connector, TLS acceptor, cancel keys,
//! hooks, metrics, live sessions, the metadata snapshot and per-shape statistics.

use std::sync::Arc;

use crate::cancel::CancelRegistry;
use crate::config::{Config, Overrides};
use crate::hooks::{HooksFactory, NoHooks};
use crate::metadata::{Loader, MetadataError, MetadataStore};
use crate::metrics::ProxyMetrics;
use crate::net::tls::{acceptor, TlsSetupError};
use crate::net::upstream::Connector;
use crate::sessions::SessionRegistry;
use crate::routing::RoutingFactory;
use crate::shapes::Shapes;
use citus_proxy_cache::Cache;
use citus_proxy_router::Router;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("result cache: {0}")]
    Cache(String),
}

/// Where the configuration came from, so RELOAD can read it again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<std::path::PathBuf>,
    pub overrides: Overrides,
}

pub struct Context {
    /// The configuration the proxy started with.
    pub config: Config,
    /// The configuration in force: `config` with the keys that apply live replaced by each
    /// SIGHUP / RELOAD (see admin::reload). Read it for those keys (limits, admin users, …).
    pub live: arc_swap::ArcSwap<Config>,
    pub connector: Connector,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub cancels: Arc<CancelRegistry>,
    pub hooks: Arc<dyn HooksFactory>,
    pub metrics: Arc<ProxyMetrics>,
    pub sessions: Arc<SessionRegistry>,
    pub metadata: Arc<MetadataStore>,
    /// None when routing is off: no catalog is read.
    pub loader: Option<Loader>,
    pub shapes: Arc<Shapes>,
    /// The result cache; None when `cache.enabled` or `routing.enabled` is off.
    pub cache: Option<Cache>,
    pub source: ConfigSource,
}

impl Context {
    /// Builds the shared context; fails on unreadable TLS material, naming the file. With a
    /// Redis cache configured it must run inside the tokio runtime that lives as long as the
    /// proxy (the cache's connection and invalidation listener run there).
    pub fn new(config: Config) -> Result<Context, ContextError> {
        let tls = if config.tls_enabled() {
            Some(acceptor(config.tls.cert_file.as_ref(), config.tls.key_file.as_ref())?)
        } else {
            None
        };
        let loader = if config.routing.enabled { Some(Loader::from_config(&config)?) } else { None };
        let metadata = Arc::new(MetadataStore::default());
        let shapes = Arc::new(Shapes::new(1000));
        let cache = if config.routing.enabled && config.cache.enabled {
            let cc = config.cache.to_cache_config().map_err(ContextError::Cache)?;
            Some(crate::caching::build(&cc).map_err(ContextError::Cache)?)
        } else {
            None
        };
        let hooks: Arc<dyn HooksFactory> = if config.routing.enabled {
            let router = Arc::new(Router::new(config.routing.shape_cache_size as usize));
            let factory = RoutingFactory::new(router, Arc::clone(&metadata), Arc::clone(&shapes), &config.routing.search_path);
            Arc::new(factory.with_cache(cache.clone().map(crate::caching::Planner::new)))
        } else {
            Arc::new(NoHooks)
        };
        Ok(Context {
            connector: Connector::from_config(&config)?,
            tls,
            cancels: Arc::new(CancelRegistry::default()),
            hooks,
            metrics: ProxyMetrics::new(&config.slo),
            sessions: Arc::new(SessionRegistry::default()),
            metadata,
            loader,
            shapes,
            cache,
            source: ConfigSource::default(),
            live: arc_swap::ArcSwap::from_pointee(config.clone()),
            config,
        })
    }

    /// Ready to serve: the coordinator accepts connections and, when routing, metadata is loaded.
    pub async fn readiness(&self) -> Result<(), String> {
        let addr = self.connector.addr().to_string();
        match tokio::time::timeout(self.config.upstream.connect_timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("upstream {addr}: {e}")),
            Err(_) => return Err(format!("upstream {addr}: connect timed out")),
        }
        if self.loader.is_some() && self.metadata.age().is_none() {
            let why = self.metadata.last_error().unwrap_or_else(|| "not loaded yet".into());
            return Err(format!("metadata: {why}"));
        }
        Ok(())
    }

    /// Gauges computed on demand, brought up to date before each scrape.
    pub fn update_computed_gauges(&self) {
        if let Some(age) = self.metadata.age() {
            self.metrics.gauge("citus_proxy_metadata_age_seconds", &[]).set(age.as_secs_f64());
        }
        if let Some(cache) = &self.cache {
            crate::metrics::cache::export(&self.metrics, &cache.stats());
        }
    }

    /// The configuration in force (see `live`).
    pub fn live(&self) -> arc_swap::Guard<Arc<Config>> {
        self.live.load()
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn HooksFactory>) -> Context {
        self.hooks = hooks;
        self
    }

    pub fn with_source(mut self, source: ConfigSource) -> Context {
        self.source = source;
        self
    }
}
