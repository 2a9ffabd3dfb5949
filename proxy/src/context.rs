//! What every session shares: configuration, upstream connector, TLS acceptor, cancel keys, hooks.

use std::sync::Arc;

use crate::cancel::CancelRegistry;
use crate::config::Config;
use crate::hooks::{HooksFactory, NoHooks};
use crate::metrics::ProxyMetrics;
use crate::sessions::SessionRegistry;
use crate::net::tls::{acceptor, TlsSetupError};
use crate::net::upstream::Connector;

pub struct Context {
    pub config: Config,
    pub connector: Connector,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub cancels: Arc<CancelRegistry>,
    pub hooks: Arc<dyn HooksFactory>,
    pub metrics: Arc<ProxyMetrics>,
    pub sessions: Arc<SessionRegistry>,
}

impl Context {
    /// Builds the shared context; fails on unreadable TLS material, naming the file.
    pub fn new(config: Config) -> Result<Context, TlsSetupError> {
        let tls = if config.tls_enabled() {
            Some(acceptor(config.tls.cert_file.as_ref(), config.tls.key_file.as_ref())?)
        } else {
            None
        };
        Ok(Context {
            connector: Connector::from_config(&config)?,
            tls,
            cancels: Arc::new(CancelRegistry::default()),
            hooks: Arc::new(NoHooks),
            metrics: ProxyMetrics::new(&config.slo),
            sessions: Arc::new(SessionRegistry::default()),
            config,
        })
    }

    /// Ready to serve: the coordinator accepts connections.
    pub async fn readiness(&self) -> Result<(), String> {
        let addr = self.connector.addr().to_string();
        match tokio::time::timeout(self.config.upstream.connect_timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("upstream {addr}: {e}")),
            Err(_) => Err(format!("upstream {addr}: connect timed out")),
        }
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn HooksFactory>) -> Context {
        self.hooks = hooks;
        self
    }
}
