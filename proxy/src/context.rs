//! What every session shares: configuration, upstream connector, TLS acceptor, cancel keys, hooks.

use std::sync::Arc;

use crate::cancel::CancelRegistry;
use crate::config::Config;
use crate::hooks::{HooksFactory, NoHooks};
use crate::net::tls::{acceptor, TlsSetupError};
use crate::net::upstream::Connector;

pub struct Context {
    pub config: Config,
    pub connector: Connector,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub cancels: Arc<CancelRegistry>,
    pub hooks: Arc<dyn HooksFactory>,
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
            config,
        })
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn HooksFactory>) -> Context {
        self.hooks = hooks;
        self
    }
}
