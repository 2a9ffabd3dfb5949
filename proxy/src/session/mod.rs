//! One client connection: handshake, upstream connection and authentication relay, then the
//! two-way relay until either side ends.

mod auth;
mod cache_step;
mod frames;
mod handshake;
mod relay;
mod state;
mod to_client;
mod to_upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::error::SessionError;
use crate::shutdown::Phase;
use handshake::Opening;

pub use handshake::Startup;
pub use relay::{End, Halves};

/// Serves one accepted client connection to its end.
pub async fn serve(ctx: Arc<Context>, tcp: TcpStream, peer: SocketAddr, phase: watch::Receiver<Phase>) {
    let _ = tcp.set_nodelay(true);
    let startup_timeout = ctx.live().limits.startup_timeout;
    let opening = match tokio::time::timeout(startup_timeout, handshake::open(&ctx, tcp)).await {
        Ok(Ok(o)) => o,
        Ok(Err((err, client))) => {
            log_end(peer, &err);
            if let Some(mut c) = client {
                if let Some(msg) = err.to_client() {
                    let _ = c.write_all(&msg).await;
                }
                let _ = c.shutdown().await;
            }
            return;
        }
        Err(_) => {
            log_end(peer, &SessionError::StartupTimeout(startup_timeout));
            return;
        }
    };
    match opening {
        Opening::Cancel(key) => handshake::forward_cancel(&ctx, &key, peer).await,
        Opening::Startup(startup) => {
            let user = startup.user.clone();
            let database = startup.database.clone();
            debug!(%peer, %user, %database, "client started up");
            if database == ctx.config.admin.database {
                if let Err(err) = crate::admin::serve(Arc::clone(&ctx), startup, peer, phase).await {
                    log_end(peer, &err);
                }
                return;
            }
            let _client_gauge = GaugeGuard::new(&ctx.metrics.client_connections);
            let result = run(&ctx, startup, peer, phase).await;
            match result {
                Ok(end) => debug!(%peer, %user, ?end, "session ended"),
                Err(err) => log_end(peer, &err),
            }
        }
    }
}

async fn run(ctx: &Arc<Context>, startup: handshake::Startup, peer: SocketAddr, phase: watch::Receiver<Phase>) -> Result<End, SessionError> {
    let mut hooks = ctx.hooks.session_hooks(&startup.user, &startup.database, &startup.parameters());
    let listed = ctx.sessions.add(peer, &startup.user, &startup.database, startup.client.is_tls());
    let _upstream_gauge = GaugeGuard::new(&ctx.metrics.upstream_connections);
    let mut halves = connect(ctx, startup.client).await?;
    let authed = auth::relay(&mut halves, &startup.packet, ctx).await?;
    let _registration = authed.registration;
    for (name, value) in &authed.parameters {
        hooks.on_parameter_status(name, value);
    }
    relay::run(halves, hooks, Arc::clone(&listed.info), ctx, phase).await
}

/// Connects to the coordinator and relays authentication for `packet`, up to but not including
/// the final ReadyForQuery (the admin console uses this to let the coordinator check a password).
pub async fn authenticate(ctx: &Arc<Context>, client: crate::net::stream::Stream, packet: &[u8]) -> Result<Halves, SessionError> {
    let mut halves = connect(ctx, client).await?;
    // The final ReadyForQuery is the caller's to send.
    auth::relay_until_ready(&mut halves, packet, ctx, false).await?;
    Ok(halves)
}

/// Opens the coordinator connection for `client`; a failure is reported to the client as an
/// ErrorResponse naming the coordinator (08001) before it is returned.
async fn connect(ctx: &Arc<Context>, mut client: crate::net::stream::Stream) -> Result<Halves, SessionError> {
    let started = std::time::Instant::now();
    let upstream = match ctx.connector.connect().await {
        Ok(u) => u,
        Err(e) => {
            let err = SessionError::from(e);
            if let Some(msg) = err.to_client() {
                let _ = client.write_all(&msg).await;
            }
            return Err(err);
        }
    };
    ctx.metrics.upstream_connect.record(started.elapsed().as_secs_f64());
    let (client_r, client_w) = client.split();
    let (upstream_r, upstream_w) = upstream.split();
    Ok(relay::Halves::new(client_r, client_w, upstream_r, upstream_w, ctx))
}

/// Answers a client over the connection limit: SQLSTATE 53300 once its startup packet is read
/// (so TLS clients get the error over TLS, as they expect).
pub async fn reject(ctx: Arc<Context>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let limit = ctx.config.limits.max_client_connections;
    let timeout = ctx.config.limits.startup_timeout.min(std::time::Duration::from_secs(5));
    if let Ok(Ok(Opening::Startup(mut s))) = tokio::time::timeout(timeout, handshake::open(&ctx, tcp)).await {
        if let Some(msg) = SessionError::TooManyClients(limit).to_client() {
            let _ = s.client.write_all(&msg).await;
        }
        let _ = s.client.shutdown().await;
    }
    debug!(%peer, "refused: too many clients");
}

/// Counts a connection in a gauge for as long as it lives.
struct GaugeGuard(metrics::Gauge);

impl GaugeGuard {
    fn new(g: &metrics::Gauge) -> GaugeGuard {
        g.increment(1.0);
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn log_end(peer: SocketAddr, err: &SessionError) {
    match err {
        SessionError::ClientIo(_) | SessionError::ClientTls(_) | SessionError::StartupTimeout(_) => {
            debug!(%peer, error = %err, "client connection ended")
        }
        SessionError::Protocol(_) | SessionError::UnsupportedProtocol(..) => {
            warn!(%peer, error = %err, "client disconnected for a protocol violation")
        }
        SessionError::TooManyClients(_) | SessionError::IdleTimeout | SessionError::Shutdown => {
            info!(%peer, error = %err, "client disconnected")
        }
        _ => warn!(%peer, error = %err, "session failed"),
    }
}
