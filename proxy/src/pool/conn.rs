//! One pooled server connection: its two halves (the read half with what was read ahead), the
//! backend's cancel key, and what the pool needs to decide whether it may be reused.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::info::{ServerInfo, ServerState};
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::wire::backend_key::CancelKey;

/// A server connection as the pool and sessions pass it around: boxed once when opened, so a
/// checkout or checkin moves a pointer, not the whole connection.
pub type Conn = Box<ServerConn>;

pub struct ServerConn {
    pub r: ReadHalf,
    pub w: WriteHalf,
    /// Bytes read from the server and not yet handled (always whole messages between uses).
    pub buf: BytesMut,
    /// Shared with the cancel target of the client it serves (no copy per checkout).
    pub key: std::sync::Arc<CancelKey>,
    pub info: Arc<ServerInfo>,
    pub created: Instant,
    /// When it last went back to the pool.
    pub idle_since: Instant,
    /// The worker thread whose reactor serves its socket (`workers::current` when opened).
    pub home: usize,
    /// The pools' generation it was opened in: RECONNECT bumps it, older ones are closed.
    pub generation: u64,
    /// Per-connection state of what clients left on it (prepared statements, settings).
    pub state: super::ServerSideState,
    /// Frees its place in the pool and the caps when the connection is dropped.
    pub(super) _place: super::pools::Place,
}

impl ServerConn {
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The pool it belongs to (the coordinator's or a node's).
    pub fn pool(&self) -> &Arc<super::Pool> {
        self._place.pool()
    }

    /// Says goodbye (Terminate) and closes; errors are of no interest at this point.
    pub async fn close(mut self) {
        self.info.set(ServerState::Used, 0);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = self.w.write_all(&[b'X', 0, 0, 0, 4]).await;
            let _ = self.w.shutdown().await;
        })
        .await;
    }
}
