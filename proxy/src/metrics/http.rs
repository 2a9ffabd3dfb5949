//! The metrics HTTP listener: `/metrics` (Prometheus text), `/slo` (JSON), `/healthz`, `/readyz`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::context::Context;
use crate::shutdown::{reached, Phase};

pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut phase: watch::Receiver<Phase>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving /metrics, /slo, /healthz, /readyz");
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let ctx = Arc::clone(&ctx);
                let phase = phase.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, Arc::clone(&ctx), phase.clone()));
                    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await {
                        debug!(error = %e, "metrics connection ended");
                    }
                });
            }
            _ = reached(&mut phase, Phase::Closing) => return,
        }
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
