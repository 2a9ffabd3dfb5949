//! The admin console: `psql -d citus_proxy` (name configurable) reaches the proxy itself. The
//! user's password is checked by the coordinator (authentication is relayed with the database
//! replaced by `admin.auth_database`), then the role must be listed in `admin.users`. Commands
//! are PgBouncer-style and use the simple query protocol.

mod commands;
mod reload;
mod result;

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::context::Context;
use crate::error::SessionError;
use crate::session::{self, Startup};
use crate::wire::error_response::{encode, Severity};
use crate::wire::frame::HEADER_LEN;
use crate::wire::ready::{frame as ready_frame, TxStatus};

pub use commands::run as run_command;
pub use reload::{applies_live, reload, ConfigOutcome, ReloadReport};

/// One log line per reload (SIGHUP or RELOAD), naming what was applied and what needs a restart.
pub fn log_reload(trigger: &str, report: &ReloadReport) {
    match &report.config {
        ConfigOutcome::Invalid(e) => warn!(%trigger, metadata = %report.metadata, "configuration invalid, nothing applied: {e}"),
        ConfigOutcome::Changed { restart_needed, .. } if !restart_needed.is_empty() => warn!(
            %trigger,
            metadata = %report.metadata,
            restart_needed = %restart_needed.join(","),
            "configuration reloaded: {}",
            report.config_text()
        ),
        _ => info!(%trigger, metadata = %report.metadata, "configuration reloaded: {}", report.config_text()),
    }
}

/// Serves one console session; it ends (SQLSTATE 57P01) as soon as the proxy drains, since a
/// console session is idle between commands.
pub async fn serve(
    ctx: Arc<Context>,
    startup: Startup,
    peer: std::net::SocketAddr,
    mut phase: tokio::sync::watch::Receiver<crate::shutdown::Phase>,
) -> Result<(), SessionError> {
    let user = startup.user.clone();
    let packet = startup.with_database(&ctx.live().admin.auth_database);
    let mut halves = session::authenticate(&ctx, startup.client, &packet).await?;
    if !ctx.live().admin.is_admin(&user) {
        warn!(%peer, %user, "admin console refused: role not in admin.users");
        let msg = encode(Severity::Fatal, "28000", &format!("role \"{user}\" may not use the admin console (admin.users)"), None);
        let _ = halves.client_w.write_all(&msg).await;
        return Ok(());
    }
    info!(%peer, %user, "admin console session");
    if halves.client_w.write_all(&ready_frame(TxStatus::Idle)).await.is_err() {
        return Ok(());
    }
    // The coordinator connection was only for authentication.
    let _ = halves.upstream_w.write_all(&[b'X', 0, 0, 0, 4]).await;
    let max = ctx.live().limits.max_message_size as usize + 1;
    let mut skipping_to_sync = false;
    loop {
        let next = tokio::select! {
            // Cancel-safe: a partly read frame stays in the reader's buffer.
            f = halves.client.next(max) => f,
            _ = crate::shutdown::reached(&mut phase, crate::shutdown::Phase::Draining) => {
                if let Some(msg) = SessionError::Shutdown.to_client() {
                    let _ = halves.client_w.write_all(&msg).await;
                }
                return Ok(());
            }
        };
        let Ok(frame) = next else { return Ok(()) };
        // The reader returns whole frames, header included; a short one is simply not matched.
        let body = frame.get(HEADER_LEN..).unwrap_or_default();
        let mut out = Vec::new();
        match frame.first().copied().unwrap_or_default() {
            b'Q' => {
                let sql = crate::wire::query::sql(body).map(String::from_utf8_lossy).unwrap_or_default();
                commands::run(&ctx, sql.trim(), &mut out).await;
                out.extend_from_slice(&ready_frame(TxStatus::Idle));
            }
            b'X' => return Ok(()),
            b'S' => {
                skipping_to_sync = false;
                out.extend_from_slice(&ready_frame(TxStatus::Idle));
            }
            _ if skipping_to_sync => continue,
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => {
                skipping_to_sync = true;
                out.extend_from_slice(&encode(Severity::Error, "0A000", "the admin console answers the simple query protocol only", None));
            }
            other => {
                let msg = encode(Severity::Fatal, "08P01", &format!("invalid frontend message type {other}"), None);
                let _ = halves.client_w.write_all(&msg).await;
                return Ok(());
            }
        }
        if halves.client_w.write_all(&out).await.is_err() {
            return Ok(());
        }
    }
}
