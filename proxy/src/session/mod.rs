//! One client connection: handshake, upstream connection and authentication relay, then the
//! two-way relay until either side ends.

mod admission;
mod auth;
mod cache_step;
pub mod frames;
mod handshake;
pub mod pooled;
mod relay;
mod state;
pub mod throttle;
mod to_client;
mod to_upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::error::SessionError;
use crate::shutdown::Phase;
use handshake::Opening;

pub use admission::{Admission, LoginSlot, QueueSlot};
pub use handshake::Startup;
pub use pooled::PooledCancel;
pub use relay::{End, Halves};

/// Serves one accepted client connection to its end. `login` is its login slot, given back
/// when the login is over; one `limits.startup_timeout` covers the whole login: startup
/// packet, TLS, the upstream connection and the authentication exchange.
pub async fn serve(
    ctx: Arc<Context>,
    tcp: TcpStream,
    peer: SocketAddr,
    phase: watch::Receiver<Phase>,
    admission: Arc<Admission>,
    login: LoginSlot,
) {
    let _ = tcp.set_nodelay(true);
    let startup_timeout = ctx.live().limits.startup_timeout;
    let deadline = login.deadline;
    let opening = match tokio::time::timeout_at(deadline, handshake::open(&ctx, tcp)).await {
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
            // As PostgreSQL with an unfinished startup packet: closed without a word.
            log_end(peer, &SessionError::StartupTimeout(startup_timeout));
            return;
        }
    };
    match opening {
        Opening::Cancel(key, client) => {
            let _ = tokio::time::timeout_at(deadline, handshake::forward_cancel(&ctx, &key, client, peer)).await;
        }
        Opening::Startup(mut startup) => {
            let user = startup.user.clone();
            let database = startup.database.clone();
            debug!(%peer, %user, %database, "client started up");
            if database == ctx.config.admin.database {
                // The console's own login runs inside it (bounded by its own startup timeout).
                let Some(_slot) = admission.try_client() else {
                    refuse_client(&mut startup.client, &SessionError::TooManyClients(admission.max_clients), peer).await;
                    return;
                };
                drop(login);
                if let Err(err) = crate::admin::serve(Arc::clone(&ctx), startup, peer, phase).await {
                    log_end(peer, &err);
                }
                return;
            }
            let _client_gauge = GaugeGuard::new(&ctx.metrics.client_connections);
            let result = if pooled::pooling(&ctx) {
                pooled::run(&ctx, startup, peer, phase, &admission, login, deadline).await
            } else {
                run(&ctx, startup, peer, phase, &admission, login, deadline).await
            };
            match result {
                Ok(end) => debug!(%peer, %user, ?end, "session ended"),
                Err(err) => log_end(peer, &err),
            }
        }
    }
}

async fn run(
    ctx: &Arc<Context>,
    startup: handshake::Startup,
    peer: SocketAddr,
    phase: watch::Receiver<Phase>,
    admission: &Admission,
    login: LoginSlot,
    deadline: Instant,
) -> Result<End, SessionError> {
    let params = startup.parameters();
    let mut hooks = ctx.hooks.session_hooks(&startup.user, &startup.database, &params);
    let app = params.iter().find(|(k, _)| k == "application_name").map(|(_, v)| v.as_str()).unwrap_or_default();
    let listed = ctx.sessions.add(peer, &startup.user, &startup.database, startup.client.is_tls(), app);
    let _upstream_gauge = GaugeGuard::new(&ctx.metrics.upstream_connections);
    let mut halves = connect(ctx, startup.client, deadline).await?;
    let login_of = auth::Login { deadline, admission: Some(admission) };
    let authed = match auth::relay(&mut halves, &startup.packet, ctx, login_of).await {
        Ok(a) => a,
        Err(err) => {
            end_login(&mut halves, &err).await;
            return Err(err);
        }
    };
    drop(login);
    let _slot = authed.slot;
    let _registration = authed.registration;
    for (name, value) in &authed.parameters {
        hooks.on_parameter_status(name, value);
    }
    relay::run(halves, hooks, Arc::clone(&listed.info), ctx, phase).await
}

/// A login that failed after the coordinator connection was opened: the client is told why
/// (unless the coordinator already told it), the coordinator that we are leaving.
async fn end_login(halves: &mut Halves, err: &SessionError) {
    if let Some(msg) = err.to_client() {
        let _ = halves.client_w.write_all(&msg).await;
    }
    let _ = halves.client_w.shutdown().await;
    let _ = halves.upstream_w.write_all(&[b'X', 0, 0, 0, 4]).await;
    let _ = halves.upstream_w.shutdown().await;
}

/// Connects to the coordinator and relays authentication for `packet`, up to but not including
/// the final ReadyForQuery (the admin console uses this to let the coordinator check a password).
pub async fn authenticate(ctx: &Arc<Context>, client: crate::net::stream::Stream, packet: &[u8]) -> Result<Halves, SessionError> {
    let deadline = Instant::now() + ctx.live().limits.startup_timeout;
    let mut halves = connect(ctx, client, deadline).await?;
    // The final ReadyForQuery is the caller's to send.
    let login = auth::Login { deadline, admission: None };
    if let Err(err) = auth::relay_until_ready(&mut halves, packet, ctx, false, login).await {
        end_login(&mut halves, &err).await;
        return Err(err);
    }
    Ok(halves)
}

/// Opens the coordinator connection for `client`; a failure is reported to the client as an
/// ErrorResponse naming the coordinator (08001) before it is returned.
async fn connect(ctx: &Arc<Context>, mut client: crate::net::stream::Stream, deadline: Instant) -> Result<Halves, SessionError> {
    let started = std::time::Instant::now();
    let connected = match tokio::time::timeout_at(deadline, ctx.connector.connect()).await {
        Ok(c) => c.map_err(SessionError::from),
        Err(_) => Err(SessionError::StartupTimeout(ctx.live().limits.startup_timeout)),
    };
    let upstream = match connected {
        Ok(u) => u,
        Err(err) => {
            if let Some(msg) = err.to_client() {
                let _ = client.write_all(&msg).await;
            }
            let _ = client.shutdown().await;
            return Err(err);
        }
    };
    ctx.metrics.upstream_connect.record(started.elapsed().as_secs_f64());
    let (client_r, client_w) = client.split();
    let (upstream_r, upstream_w) = upstream.split();
    Ok(relay::Halves::new(client_r, client_w, upstream_r, upstream_w, ctx))
}

/// Answers a connection refused at the login limit: SQLSTATE 53300 once its startup packet is
/// read (so TLS clients get the error over TLS, as they expect), within a short bound.
pub async fn reject(ctx: Arc<Context>, tcp: TcpStream, peer: SocketAddr, max_logins: u32, _slot: QueueSlot) {
    let _ = tcp.set_nodelay(true);
    let timeout = ctx.live().limits.startup_timeout.min(std::time::Duration::from_secs(2));
    if let Ok(Ok(Opening::Startup(mut s))) = tokio::time::timeout(timeout, handshake::open(&ctx, tcp)).await {
        refuse_client(&mut s.client, &SessionError::TooManyLogins(max_logins), peer).await;
    }
}

async fn refuse_client(client: &mut crate::net::stream::Stream, err: &SessionError, peer: SocketAddr) {
    if let Some(msg) = err.to_client() {
        let _ = client.write_all(&msg).await;
    }
    let _ = client.shutdown().await;
    log_end(peer, err);
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
        // A peer can cause these at will: one line per interval, however many there are.
        SessionError::Protocol(_) | SessionError::UnsupportedProtocol(..) => {
            if let Some(held_back) = throttle::MALFORMED.admit() {
                warn!(%peer, error = %err, held_back, "client disconnected for a protocol violation");
            }
        }
        SessionError::TooManyClients(_) => {
            if let Some(held_back) = throttle::CLIENT_LIMIT.admit() {
                warn!(%peer, error = %err, held_back, "refusing clients: limits.max_client_connections reached");
            }
        }
        SessionError::TooManyLogins(_) => {
            if let Some(held_back) = throttle::LOGIN_LIMIT.admit() {
                warn!(%peer, error = %err, held_back, "refusing clients: limits.max_logins_in_progress reached");
            }
        }
        SessionError::IdleTimeout | SessionError::Shutdown | SessionError::Killed => info!(%peer, error = %err, "client disconnected"),
        _ => warn!(%peer, error = %err, "session failed"),
    }
}
