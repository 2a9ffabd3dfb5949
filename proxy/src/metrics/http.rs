//! The metrics HTTP listener: `/metrics` (Prometheus text), `/slo` (JSON), `/healthz`, `/readyz`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::session::throttle::METRICS_LIMIT;
use crate::shutdown::{reached, Phase};

pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut phase: watch::Receiver<Phase>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving /metrics, /slo, /healthz, /readyz");
    }
    // Scrapers and probes need few connections; idle ones must not pile up and eat the
    // file descriptors the PostgreSQL listener needs.
    let cap = ctx.config.limits.metrics_max_connections as usize;
    let open = Arc::new(Semaphore::new(cap));
    let idle = ctx.config.limits.metrics_idle_timeout;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
                    drop(tcp);
                    if let Some(held_back) = METRICS_LIMIT.admit() {
                        warn!(%peer, limit = cap, held_back, "refusing metrics connections: limits.metrics_max_connections reached");
                    }
                    continue;
                };
                let ctx = Arc::clone(&ctx);
                let phase = phase.clone();
                tokio::spawn(async move {
                    serve_connection(tcp, ctx, phase, idle).await;
                    drop(permit);
                });
            }
            _ = reached(&mut phase, Phase::Closing) => return,
        }
    }
}

/// One HTTP connection: its request headers must arrive within `idle`, and once it has been
/// open for `idle` it is closed as soon as no request is in flight (a scraper reconnects).
async fn serve_connection(tcp: TcpStream, ctx: Arc<Context>, phase: watch::Receiver<Phase>, idle: Duration) {
    let svc = hyper::service::service_fn(move |req| handle(req, Arc::clone(&ctx), phase.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    if !idle.is_zero() {
        builder.timer(TokioTimer::new()).header_read_timeout(idle);
    }
    let conn = builder.serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    let ended = if idle.is_zero() {
        conn.as_mut().await
    } else {
        tokio::select! {
            r = conn.as_mut() => r,
            _ = tokio::time::sleep(idle) => {
                conn.as_mut().graceful_shutdown();
                tokio::time::timeout(idle, conn.as_mut()).await.unwrap_or(Ok(()))
            }
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "metrics connection ended");
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(req: Request<Incoming>, ctx: Arc<Context>, phase: watch::Receiver<Phase>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n"));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            ctx.update_computed_gauges();
            reply(StatusCode::OK, "text/plain; version=0.0.4", ctx.metrics.render(&ctx.sessions))
        }
        "/slo" => reply(StatusCode::OK, "application/json", ctx.metrics.slo_json().to_string()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n"),
        // A draining proxy takes no new clients: load balancers should stop sending them.
        "/readyz" if *phase.borrow() != Phase::Running => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready: draining\n"),
        "/readyz" => match ctx.readiness().await {
            Ok(()) => reply(StatusCode::OK, "text/plain", "ready\n"),
            Err(why) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("not ready: {why}\n")),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /slo, /healthz, /readyz\n"),
    })
}
