//! The listener: accepts clients up to `limits.max_client_connections`, runs a session task for
//! each, and carries out shutdown (drain on SIGTERM, close at once on SIGINT).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::context::Context;
use crate::session;
use crate::shutdown::{reached, Phase, Shutdown};
use crate::workers::Workers;

/// Serves clients from `listener` until `shutdown` says to stop; returns once every session ended.
/// Sessions run on the current runtime.
pub async fn run(listener: TcpListener, ctx: Arc<Context>, shutdown: &Shutdown) {
    run_on(listener, ctx, shutdown, None).await
}

/// As `run`, with each session handed to one of `workers` (thread-per-core) when given.
pub async fn run_on(listener: TcpListener, ctx: Arc<Context>, shutdown: &Shutdown, workers: Option<&Workers>) {
    let mut phase = shutdown.subscribe();
    let limit = ctx.config.limits.max_client_connections;
    let permits = Arc::new(Semaphore::new(limit as usize));
    let mut sessions = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, upstream = ctx.connector.addr(), "accepting PostgreSQL clients");
    }
    let background = spawn_background(&ctx, shutdown).await;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let ctx = Arc::clone(&ctx);
                    let rx = shutdown.subscribe();
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => match workers {
                            None => {
                                sessions.spawn(async move {
                                    session::serve(ctx, tcp, peer, rx).await;
                                    drop(permit);
                                });
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
                                        Ok(tcp) => session::serve(ctx, tcp, peer, rx).await,
                                        Err(e) => warn!(%peer, error = %e, "cannot register a connection on its worker"),
                                    }
                                    drop(permit);
                                }, w.next());
                            }
                        },
                        Err(_) => {
                            warn!(%peer, limit, "refusing a client: limits.max_client_connections reached");
                            sessions.spawn(session::reject(ctx, tcp, peer));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
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
