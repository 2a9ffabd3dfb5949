//! A client of a pooled mode (`pool.mode = session | transaction`): the proxy authenticates it
//! itself, answers its login with the pool's server parameters and a cancel key of its own, and
//! runs it over server connections taken from its pool (`relay`).

mod auth;
mod cancel;
mod carry;
mod from_client;
mod from_server;
mod login;
mod lost;
mod pin;
mod place;
mod relay;
mod rename;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use super::admission::{Admission, LoginSlot};
use super::handshake::Startup;
use super::relay::End;
use crate::config::PoolMode;
use crate::context::Context;
use crate::error::SessionError;
use crate::pool::PoolKey;
use crate::shutdown::Phase;

pub use cancel::PooledCancel;

/// Serves a client of a pooled mode to its end.
pub async fn run(
    ctx: &Arc<Context>,
    startup: Startup,
    peer: SocketAddr,
    phase: watch::Receiver<Phase>,
    admission: &Admission,
    login_slot: LoginSlot,
    deadline: Instant,
) -> Result<End, SessionError> {
    let mode = ctx.config.pool.mode;
    let params = startup.parameters();
    let key = PoolKey::new(&startup.user, &startup.database);
    let pool = ctx.pools.get(&key);
    let tls = startup.client.is_tls();
    let (r, w) = startup.client.split();
    let mut client = relay::Client { r, w, buf: bytes::BytesMut::new() };
    let logged_in = tokio::time::timeout_at(deadline, login::login(ctx, &pool, &mut client, &params)).await;
    let logged_in = match logged_in {
        Ok(r) => r,
        Err(_) => Err(SessionError::StartupTimeout(ctx.live().limits.startup_timeout)),
    };
    let server_params = match logged_in {
        Ok(p) => p,
        Err(e) => {
            login::refuse(&mut client, &e).await;
            return Err(e);
        }
    };
    let slot = match admission.try_client() {
        Some(s) => s,
        None => {
            let e = SessionError::TooManyClients(admission.max_clients);
            login::refuse(&mut client, &e).await;
            return Err(e);
        }
    };
    drop(login_slot);
    let app = params.iter().find(|(k, _)| k == "application_name").map(|(_, v)| v.as_str()).unwrap_or_default();
    let listed = ctx.sessions.add(peer, &startup.user, &startup.database, tls, app);
    let cancel = Arc::new(PooledCancel::default());
    let (client_key, _registration) = ctx.cancels.register_pooled(Arc::clone(&cancel));
    let mut hooks = ctx.hooks.session_hooks(&startup.user, &startup.database, &params);
    for (name, value) in &server_params {
        hooks.on_parameter_status(name, value);
    }
    login::welcome(&mut client, &server_params, &client_key).await?;
    let _client_count = ClientCount::new(&pool);
    let session = relay::Pooled::new(ctx, mode, Arc::clone(&pool), client, hooks, Arc::clone(&listed.info), cancel, &params);
    let end = session.run(phase).await;
    drop(slot);
    end
}

/// Counts a logged-in client in its pool.
struct ClientCount(Arc<crate::pool::Pool>);

impl ClientCount {
    fn new(pool: &Arc<crate::pool::Pool>) -> ClientCount {
        pool.clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ClientCount(Arc::clone(pool))
    }
}

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether this configuration pools.
pub fn pooling(ctx: &Context) -> bool {
    ctx.config.pool.mode != PoolMode::Off
}
