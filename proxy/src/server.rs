//! The listener: accepts clients (up to `limits.max_logins_in_progress` logging in and
//! `limits.max_client_connections` logged in), runs a session task for each, and carries out
//! shutdown (drain on SIGTERM, close at once on SIGINT).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::context::Context;
use crate::session::{self, throttle, Admission};
use crate::shutdown::{reached, Phase, Shutdown};
use crate::workers::Workers;

/// Serves clients from `listener` until `shutdown` says to stop; returns once every session ended.
/// Sessions run on the current runtime.
pub async fn run(listener: TcpListener, ctx: Arc<Context>, shutdown: &Shutdown) {
    run_on(listener, ctx, shutdown, None).await
}

/// Longest pause after failed accepts (the pause doubles from 5 ms while they keep failing).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// As `run`, with each session handed to one of `workers` (thread-per-core) when given.
pub async fn run_on(listener: TcpListener, ctx: Arc<Context>, shutdown: &Shutdown, workers: Option<&Workers>) {
    let mut phase = shutdown.subscribe();
    // The console's SHUTDOWN drains as SIGTERM does (a context serves one listener).
    let _ = ctx.shutdown.set(shutdown.clone());
    let admission = Arc::new(Admission::new(&ctx.config.limits));
    let mut sessions = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, upstream = ctx.connector.addr(), "accepting PostgreSQL clients");
    }
    let background = spawn_background(&ctx, shutdown).await;
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    backoff = Duration::ZERO;
                    let ctx = Arc::clone(&ctx);
                    // A connection counts as a login until the coordinator accepted it; only
                    // then does it take a client slot (see session::admission).
                    let rx = shutdown.subscribe();
                    // One login deadline from accept, whether a slot is free now or waited for.
                    let deadline = tokio::time::Instant::now() + ctx.live().limits.startup_timeout;
                    let Some(login) = admission.try_login(deadline) else {
                        queue(&mut sessions, ctx, tcp, peer, &admission, rx, deadline);
                        continue;
                    };
                    let admission = Arc::clone(&admission);
                    match workers {
                        None => {
                            sessions.spawn(session::serve(ctx, tcp, peer, rx, admission, login));
                        }
                        Some(w) => {
                            // A socket belongs to the runtime that registered it: move it
                            // over as a std socket and register it on the worker.
                            let std = match tcp.into_std() {
                                Ok(s) => s,
                                Err(e) => {
                                    warn!(%peer, error = %e, "cannot hand a connection to a worker");
                                    continue;
                                }
                            };
                            sessions.spawn_on(async move {
                                match tokio::net::TcpStream::from_std(std) {
                                    Ok(tcp) => session::serve(ctx, tcp, peer, rx, admission, login).await,
                                    Err(e) => warn!(%peer, error = %e, "cannot register a connection on its worker"),
                                }
                            }, w.next());
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning, and
                    // say so once per interval rather than once per failure.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                    if let Some(held_back) = throttle::ACCEPT_FAILED.admit() {
                        warn!(error = %e, held_back, ?backoff, "accept failed");
                    }
                    tokio::time::sleep(backoff).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = reached(&mut phase, Phase::Draining) => break,
        }
    }
    drop(listener);
    let timeout = ctx.config.shutdown.timeout;
    if *phase.borrow() == Phase::Draining {
        info!(sessions = sessions.len(), ?timeout, "draining: waiting for running transactions");
        let all_done = async { while sessions.join_next().await.is_some() {} };
        tokio::select! {
            _ = all_done => {}
            _ = tokio::time::sleep(timeout) => {
                warn!(left = sessions.len(), "shutdown timeout: closing the remaining connections");
            }
            _ = reached(&mut phase, Phase::Closing) => {}
        }
    }
    shutdown.close_now();
    // Sessions react to Closing at once; don't hang on one that cannot.
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while sessions.join_next().await.is_some() {} }).await;
    sessions.abort_all();
    for task in background {
        task.abort();
    }
    info!("stopped");
}

/// A connection arriving with every login slot taken: it waits a few seconds for one (a burst
/// of real clients, a pool filling up, queues instead of being refused), and is then served or
/// answered 53300. Such waiting connections
/// are bounded too; past that bound one is closed unanswered. Logged once per interval.
fn queue(
    sessions: &mut JoinSet<()>,
    ctx: Arc<Context>,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    admission: &Arc<Admission>,
    rx: tokio::sync::watch::Receiver<crate::shutdown::Phase>,
    deadline: tokio::time::Instant,
) {
    let max_logins = admission.max_logins;
    match admission.try_queue() {
        Some(waiting) => {
            let admission = Arc::clone(admission);
            sessions.spawn(async move {
                match admission.wait_login(deadline).await {
                    Some(login) => {
                        drop(waiting);
                        session::serve(ctx, tcp, peer, rx, admission, login).await
                    }
                    None => session::reject(ctx, tcp, peer, max_logins, waiting).await,
                }
            });
        }
        None => {
            drop(tcp);
            if let Some(held_back) = throttle::LOGIN_LIMIT.admit() {
                warn!(%peer, limit = max_logins, held_back, "refusing clients: limits.max_logins_in_progress reached");
            }
        }
    }
}

/// The metrics listener (when `metrics.listen` is not `off`) and histogram upkeep.
async fn spawn_background(ctx: &Arc<Context>, shutdown: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(addr) = ctx.config.metrics.listen_addr() {
        match crate::net::listener::bind(addr, ctx.config.listen_reuseport) {
            Ok(l) => tasks.push(tokio::spawn(crate::metrics::http::serve(l, Arc::clone(ctx), shutdown.subscribe()))),
            Err(e) => warn!(%addr, error = %e, "cannot listen for metrics (configuration key `metrics.listen`)"),
        }
    }
    let timing = crate::metadata::Timing {
        refresh_interval: ctx.config.metadata.refresh_interval,
        probe_interval: ctx.config.metadata.probe_interval,
    };
    if let Some(refresher) = ctx.stores.start(Arc::clone(&ctx.metrics), timing, shutdown.subscribe()) {
        tasks.push(refresher);
    }
    if ctx.config.pool.mode != crate::config::PoolMode::Off {
        tasks.push(tokio::spawn(crate::pool::maintain(Arc::clone(ctx), shutdown.subscribe())));
    }
    let metrics = Arc::clone(&ctx.metrics);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.upkeep();
        }
    }));
    tasks
}
