//! citus-proxy: a PostgreSQL wire-protocol proxy and query router for Citus.
//!
//! `server::run(listener, context, shutdown)` is the whole server; the binary adds config,
//! logging and signals around it, and tests run it in-process on `127.0.0.1:0`.

pub mod admin;
pub mod caching;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod explain;
pub mod fd_limit;
pub mod flush;
pub mod hooks;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod pool;
pub mod routing;
pub mod server;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod shapes;
pub mod shutdown;
pub mod wire;
pub mod workers;
