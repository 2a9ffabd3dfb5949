//! The two directions of an established session (`to_upstream`, `to_client`), run as two
//! futures of one task. Each reads whatever arrived, walks the frame headers in place, looks
//! inside only the few frames it must (Query, Parse, Bind — and Describe, Execute with the cache
//! on — one way; ReadyForQuery, ErrorResponse and ParameterStatus the other), and forwards the
//! bytes as read, in one write per read. Frames it does not inspect are never buffered whole,
//! so a 100 MB result streams through a fixed buffer.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Notify};

use super::frames::FrameReader;
use super::state::{lock, State};
use super::to_client::upstream_to_client;
use super::to_upstream::client_to_upstream;
use crate::context::Context;
use crate::error::SessionError;
use crate::hooks::StatementHooks;
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::sessions::SessionInfo;
use crate::shutdown::{reached, Phase};

/// Frames up to this size are inspected whole; bigger Query/Parse/Bind frames (bulk literals)
/// are streamed through unanalysed rather than buffered.
pub(super) const INSPECT_LIMIT: usize = 1 << 20;
/// Read at least this much spare room before each read.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// While a statement is outstanding, how often the idle timeout re-checks whether it finished.
pub(super) const BUSY_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

pub struct Halves {
    pub client: FrameReader<ReadHalf>,
    pub client_w: WriteHalf,
    pub upstream: FrameReader<ReadHalf>,
    pub upstream_w: WriteHalf,
}

impl Halves {
    pub fn new(client_r: ReadHalf, client_w: WriteHalf, upstream_r: ReadHalf, upstream_w: WriteHalf, _ctx: &Arc<Context>) -> Self {
        Halves { client: FrameReader::new(client_r), client_w, upstream: FrameReader::new(upstream_r), upstream_w }
    }
}

/// After the client's Terminate, how long the coordinator has to close its side.
const TERMINATE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// When the client sent Terminate (forwarded already), the session ends as a plain relay's
/// would: whatever the coordinator still sends (answers to what came before the Terminate) is
/// relayed, and the client's side is closed when the coordinator closes, not before.
async fn after_client_end<F>(r: Result<End, SessionError>, s2c: &mut F) -> Result<End, SessionError>
where
    F: std::future::Future<Output = Result<End, SessionError>> + Unpin,
{
    if matches!(r, Ok(End::ClientTerminated)) {
        // The coordinator closing is the expected end here, not an error.
        let _ = tokio::time::timeout(TERMINATE_GRACE, s2c).await;
    }
    r
}

/// How an established session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed its socket.
    ClientGone,
    /// The coordinator closed after telling the client why (a FATAL error).
    UpstreamClosed,
    /// The proxy is draining and the session reached an idle point.
    Drained,
    /// The proxy closed every connection.
    Closed,
}

pub async fn run(
    h: Halves,
    hooks: Box<dyn StatementHooks>,
    info: Arc<SessionInfo>,
    ctx: &Arc<Context>,
    mut phase: watch::Receiver<Phase>,
) -> Result<End, SessionError> {
    // KILL on the admin console ends the session (see the select below).
    let kill = Arc::clone(&info);
    let state = State::new(hooks, info);
    // Wakes the coordinator → client direction when a cached answer is queued for the client.
    let wake = Notify::new();
    let Halves { client, mut client_w, upstream, mut upstream_w } = h;
    let result = {
        let c2s = client_to_upstream(client, &mut upstream_w, &state, &wake, ctx);
        let s2c = upstream_to_client(upstream, &mut client_w, &state, &wake, ctx);
        tokio::pin!(c2s, s2c);
        tokio::select! {
            r = &mut c2s => after_client_end(r, &mut s2c).await,
            r = &mut s2c => r,
            // Admin console KILL: ends now, whatever is in flight (the client gets 57P01).
            _ = kill.killed() => Err(SessionError::Killed),
            _ = reached(&mut phase, Phase::Draining) => {
                let idle = {
                    let mut st = lock(&state);
                    st.draining = true;
                    st.is_idle()
                };
                if idle {
                    Ok(End::Drained)
                } else {
                    tokio::select! {
                        r = &mut c2s => after_client_end(r, &mut s2c).await,
                        r = &mut s2c => r,
                        _ = reached(&mut phase, Phase::Closing) => Ok(End::Closed),
                    }
                }
            }
        }
    };
    // Writes whose outcome the proxy never learnt (the connection ended before their
    // ReadyForQuery, or inside a transaction block): they may have committed.
    let unsettled = lock(&state).take_unsettled_writes();
    if let (Some(cache), false) = (&ctx.cache, unsettled.is_empty()) {
        for scope in &unsettled {
            cache.invalidate(scope).await;
        }
    }
    let farewell = match &result {
        Err(e) => e.to_client(),
        Ok(End::Drained) | Ok(End::Closed) => SessionError::Shutdown.to_client(),
        Ok(_) => None,
    };
    if let Some(msg) = farewell {
        let _ = client_w.write_all(&msg).await;
    }
    if matches!(result, Ok(End::Drained) | Ok(End::Closed) | Err(_)) {
        // Tell the coordinator we are leaving rather than vanishing.
        let _ = upstream_w.write_all(&[b'X', 0, 0, 0, 4]).await;
    }
    let _ = client_w.shutdown().await;
    let _ = upstream_w.shutdown().await;
    result
}
