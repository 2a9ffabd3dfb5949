//! What every session shares: configuration, upstream connector, TLS acceptor, cancel keys,
//! hooks, metrics, live sessions, the metadata snapshot and per-shape statistics.

use std::sync::Arc;

use crate::cancel::CancelRegistry;
use crate::config::{Config, Overrides};
use crate::hooks::{HooksFactory, NoHooks};
use crate::metadata::{Loader, MetadataError, MetadataStore, MetadataStores};
use crate::metrics::ProxyMetrics;
use crate::net::tls::{acceptor, TlsSetupError};
use crate::net::upstream::Connector;
use crate::routing::RoutingFactory;
use crate::sessions::SessionRegistry;
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
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
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
    /// The upstream URL's database's snapshot (SHOW CLUSTER, RELOAD, readiness, gauges).
    pub metadata: Arc<MetadataStore>,
    /// Every database's snapshot; sessions route on their own database's.
    pub stores: Arc<MetadataStores>,
    /// None when routing is off: no catalog is read.
    pub loader: Option<Loader>,
    pub shapes: Arc<Shapes>,
    /// The result cache; None when `cache.enabled` or `routing.enabled` is off.
    pub cache: Option<Cache>,
    pub source: ConfigSource,
    /// Server connection pools (`pool.mode` session or transaction; unused when off).
    pub pools: crate::pool::Pools,
    /// Renames pooled clients' prepared statements (ids shared by every session).
    pub prepared: crate::pool::prepared::Planner,
    /// Checks pooled clients' passwords (None when `pool.mode = off`: the coordinator does).
    pub authenticator: Option<crate::auth::Authenticator>,
    /// The shutdown in force, set by `server::run_on` (the console's SHUTDOWN drains through it).
    pub shutdown: std::sync::OnceLock<crate::shutdown::Shutdown>,
}

impl Context {
    /// Builds the shared context; fails on unreadable TLS material, naming the file. With a
    /// Redis cache configured it must run inside the tokio runtime that lives as long as the
    /// proxy (the cache's connection and invalidation listener run there).
    pub fn new(config: Config) -> Result<Context, ContextError> {
        let tls = if config.tls_enabled() { Some(acceptor(config.tls.cert_file.as_ref(), config.tls.key_file.as_ref())?) } else { None };
        let loader = if config.routing.enabled { Some(Loader::from_config(&config)?) } else { None };
        let stores = Arc::new(MetadataStores::new(loader.clone()));
        let metadata = Arc::clone(stores.default_store());
        let shapes = Arc::new(Shapes::new(1000));
        let cache = if config.routing.enabled && config.cache.enabled {
            let cc = config.cache.to_cache_config().map_err(ContextError::Cache)?;
            Some(crate::caching::build(&cc).map_err(ContextError::Cache)?)
        } else {
            None
        };
        let authenticator =
            if config.pool.mode != crate::config::PoolMode::Off { Some(crate::auth::Authenticator::from_config(&config)?) } else { None };
        let hooks: Arc<dyn HooksFactory> = if config.routing.enabled {
            let router = Arc::new(Router::new(config.routing.shape_cache_size as usize));
            let factory = RoutingFactory::new(router, Arc::clone(&stores), Arc::clone(&shapes), &config.routing.search_path);
            let placing = crate::routing::Placing::new(
                config.pool.mode == crate::config::PoolMode::Transaction && config.routing.shard_local,
                config.pool.mode == crate::config::PoolMode::Transaction && config.routing.spread_reads,
            );
            Arc::new(
                factory
                    .with_cache(cache.clone().map(|c| crate::caching::Planner::new(c, &config.cache.ignored_settings)))
                    .with_placing(placing),
            )
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
            stores,
            loader,
            shapes,
            cache,
            source: ConfigSource::default(),
            pools: crate::pool::Pools::default(),
            authenticator,
            prepared: crate::pool::prepared::Planner::new(Arc::new(crate::pool::prepared::StatementIds::default())),
            shutdown: std::sync::OnceLock::new(),
            live: arc_swap::ArcSwap::from_pointee(config.clone()),
            config,
        })
    }

    /// Ready to serve: the coordinator answers within `upstream.connect_timeout` and, when
    /// routing, metadata is loaded. Accepting a TCP connection is not answering (a hung
    /// PostgreSQL's kernel still completes handshakes), so the probe asks for an answer: an
    /// SSLRequest, which a live server answers with one byte and which, dropped after that
    /// answer, leaves nothing in its log.
    pub async fn readiness(&self) -> Result<(), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.connector.addr().to_string();
        let timeout = self.config.upstream.connect_timeout;
        let probe = async {
            let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
            let mut req = [0u8; 8];
            req[..4].copy_from_slice(&8i32.to_be_bytes());
            req[4..].copy_from_slice(&crate::wire::startup::SSL_REQUEST_CODE.to_be_bytes());
            tcp.write_all(&req).await?;
            tcp.read_u8().await
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(b'S' | b'N')) => {}
            Ok(Ok(other)) => return Err(format!("upstream {addr}: unexpected answer {other:#04x} to SSLRequest")),
            Ok(Err(e)) => return Err(format!("upstream {addr}: {e}")),
            Err(_) => return Err(format!("upstream {addr}: no answer within {timeout:?} (upstream.connect_timeout)")),
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
        if self.config.pool.mode != crate::config::PoolMode::Off {
            self.metrics.gauge("citus_proxy_pool_size", &[]).set(self.live().pool.size as f64);
            for pool in self.pools.all() {
                let s = pool.snapshot();
                let l = |state: &'static str| {
                    vec![
                        ("user", s.key.user.clone()),
                        ("database", s.key.database.clone()),
                        ("node", s.key.target.label().to_string()),
                        ("state", state.to_string()),
                    ]
                };
                let g = |state, v: u32| self.metrics.gauge("citus_proxy_pool_server_connections", &l(state)).set(v as f64);
                g("active", s.sv_active);
                g("idle", s.sv_idle);
                g("login", s.sv_login);
                let c = |state, v: u32| self.metrics.gauge("citus_proxy_pool_clients", &l(state)).set(v as f64);
                c("active", s.clients.saturating_sub(s.cl_waiting));
                c("waiting", s.cl_waiting);
            }
            for (target, served, fallbacks) in crate::pool::served_by_target(&self.pools) {
                let l = [("node", target.label().to_string())];
                self.metrics.counter_with("citus_proxy_served_total", &l).absolute(served);
                if target != crate::pool::Target::Coordinator {
                    self.metrics.counter_with("citus_proxy_node_fallbacks_total", &l).absolute(fallbacks);
                }
            }
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
