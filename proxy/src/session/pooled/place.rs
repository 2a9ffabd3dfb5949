//! Where a pooled transaction runs (`routing.shard_local`, `routing.spread_reads`): its first
//! statement picks the server, the rest of it stays there. A lone BEGIN is answered here and
//! sent on to whichever server the statement after it picks; extended-protocol messages before
//! the first Bind of a transaction wait for that Bind, whose values decide. A node that does
//! not answer sends the transaction to the coordinator instead (nothing has run yet then).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::relay::{Link, Pooled};
use super::rename::Renamed;
use crate::error::SessionError;
use crate::hooks::{Placement, StatementNote};
use crate::pool::{CheckoutError, Conn, Target};
use crate::wire::error_response::{encode, field, Severity};
use crate::wire::frame::{build, HEADER_LEN};
use crate::wire::ready::{self, TxStatus};

impl Pooled<'_> {
    /// The server a transaction starting with a statement placed so goes to.
    fn target_of(&self, placement: &Placement) -> Target {
        if !self.placing || self.pinned {
            return Target::Coordinator;
        }
        match placement {
            Placement::Node(addr) => Target::Node(Arc::clone(addr)),
            // Spreading is for statements outside a transaction block only.
            Placement::Spread(addr) if self.begin.is_none() => Target::Node(Arc::clone(addr)),
            _ => Target::Coordinator,
        }
    }

    /// As `attach`, on the server `placement` asks for when a connection must be taken.
    pub(super) async fn attach_for(&mut self, placement: &Placement) -> Result<(), SessionError> {
        if matches!(self.link, Link::Attached(_)) {
            return Ok(());
        }
        let target = self.target_of(placement);
        self.attach_to(target).await
    }

    /// A connection on `target`, or on the coordinator when that node does not answer.
    pub(super) async fn checkout_on(&mut self, target: Target) -> Result<Conn, SessionError> {
        if let Target::Node(addr) = &target {
            if let Some(conn) = self.node_checkout(addr).await? {
                return Ok(conn);
            }
        }
        self.ctx.pools.checkout(self.ctx, &self.pool, self.info.id).await.map_err(|e| SessionError::Pool(e.to_client()))
    }

    async fn node_checkout(&mut self, addr: &Arc<str>) -> Result<Option<Conn>, SessionError> {
        let Some(pool) = self.ctx.pools.node_pool(self.ctx, &self.pool, addr) else { return Ok(None) };
        let Some(side) = pool.node.as_ref() else { return Ok(None) };
        if !side.available() {
            pool.fallbacks.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        match self.ctx.pools.checkout(self.ctx, &pool, self.info.id).await {
            Ok(conn) => {
                side.answered(&pool.key);
                Ok(Some(conn))
            }
            // Refused or unreachable: nothing ran, so the coordinator takes the transaction.
            Err(CheckoutError::Open(e)) => {
                side.refused(&pool.key, &e);
                pool.fallbacks.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(SessionError::Pool(e.to_client())),
        }
    }

    /// Keeps an extended-protocol message back until the Bind that places the transaction.
    pub(super) fn hold(&mut self, kind: Renamed, frame: &[u8]) -> bool {
        if !self.placing || self.pinned || !matches!(self.link, Link::Detached) {
            return false;
        }
        self.held.push((kind, BytesMut::from(frame)));
        true
    }

    /// The messages kept back, to the server just attached, in their order.
    pub(super) fn replay_held(&mut self) -> Result<(), SessionError> {
        if self.held.is_empty() {
            return Ok(());
        }
        for (kind, frame) in std::mem::take(&mut self.held) {
            if self.renames() {
                self.rename(kind, frame.get(HEADER_LEN..).unwrap_or_default())?;
            } else {
                self.sout.extend_from_slice(&frame);
            }
        }
        Ok(())
    }

    /// Only Closes of named statements wait for this Sync (a driver dropping statements it
    /// prepared): their server names stay cached on the connections, so nothing needs a server.
    pub(super) fn held_closes_only(&self) -> bool {
        self.renames()
            && !self.held.is_empty()
            && self.held.iter().all(|(kind, frame)| {
                matches!(kind, Renamed::Close)
                    && crate::wire::describe::DescribeView::decode(frame.get(HEADER_LEN..).unwrap_or_default())
                        .is_ok_and(|v| v.kind == b'S' && !v.name.is_empty())
            })
    }

    /// Answers the held Closes and their Sync here: CloseComplete each, then ReadyForQuery.
    pub(super) async fn answer_held_closes(&mut self, note: StatementNote) -> Result<(), SessionError> {
        let started = self.batch_start.take().unwrap_or_else(Instant::now);
        let held = std::mem::take(&mut self.held);
        let mut out = BytesMut::with_capacity(held.len() * 5 + 6);
        for (_, frame) in &held {
            if let Ok(v) = crate::wire::describe::DescribeView::decode(frame.get(HEADER_LEN..).unwrap_or_default()) {
                self.statements.forget(v.name);
            }
            out.extend_from_slice(&build(b'3', b""));
        }
        out.extend_from_slice(&ready::frame(self.tx));
        self.batch_open = false;
        self.client.w.write_all(&out).await.map_err(SessionError::ClientIo)?;
        self.ctx.metrics.bytes_to_client.increment(out.len() as u64);
        let p = crate::session::state::Pending::new(started, note);
        if let Some(wait) = self.finished(&p, self.tx) {
            wait.await;
        }
        Ok(())
    }

    /// A lone BEGIN with no server attached: answered here, sent on with the next statement.
    /// Returns the note back when it is not one.
    pub(super) async fn defer_begin(&mut self, sql: &[u8], note: StatementNote) -> Result<Option<StatementNote>, SessionError> {
        let lone_begin = self.placing
            && note.placement == Placement::Begin
            && self.begin.is_none()
            && !self.pinned
            && matches!(self.link, Link::Detached)
            && self.quiet();
        let text = std::str::from_utf8(sql).ok().filter(|_| lone_begin);
        let Some(text) = text else { return Ok(Some(note)) };
        let started = Instant::now();
        let tag: &[u8] =
            if crate::settings::words::first_word(text).eq_ignore_ascii_case("start") { b"START TRANSACTION\0" } else { b"BEGIN\0" };
        let mut out = BytesMut::with_capacity(64);
        if let Some(n) = &note.notice {
            out.extend_from_slice(n);
        }
        out.extend_from_slice(&build(b'C', tag));
        out.extend_from_slice(&ready::frame(TxStatus::InTransaction));
        self.begin = Some(text.trim_end_matches(|c: char| c == ';' || c.is_whitespace()).to_string());
        self.tx = TxStatus::InTransaction;
        self.client.w.write_all(&out).await.map_err(SessionError::ClientIo)?;
        self.ctx.metrics.bytes_to_client.increment(out.len() as u64);
        let p = crate::session::state::Pending::new(started, note);
        if let Some(wait) = self.finished(&p, TxStatus::InTransaction) {
            wait.await;
        }
        Ok(None)
    }

    /// Opens the transaction block a deferred BEGIN stands for on the connection just taken.
    pub(super) async fn begin_on(&mut self, conn: &mut Conn) -> Result<(), SessionError> {
        if self.side_trip {
            return Ok(());
        }
        let Some(begin) = self.begin.take() else { return Ok(()) };
        open_block(conn, &begin, self.ctx.config.upstream.connect_timeout).await
    }

    /// The side trip's ReadyForQuery, as the client's open transaction block has it: `T`, or `E`
    /// when the batch failed (an error in a block aborts it). Rewritten in place.
    pub(super) fn side_trip_status(&mut self, buf: &mut BytesMut, pos: usize) -> TxStatus {
        let status = if self.error_since_ready { TxStatus::Failed } else { TxStatus::InTransaction };
        if let Some(b) = buf.get_mut(pos + HEADER_LEN) {
            *b = status.byte();
        }
        status
    }

    /// After the side trip's ReadyForQuery: the connection goes back and the BEGIN keeps
    /// waiting; if the batch failed, the block is opened here and failed on purpose, so what
    /// follows gets PostgreSQL's own answers for an aborted transaction (25P02 until ROLLBACK).
    pub(super) async fn end_side_trip(&mut self) -> Result<(), SessionError> {
        self.side_trip = false;
        let failed = self.tx == TxStatus::Failed;
        if !failed && self.maybe_release_anyway().await {
            return Ok(());
        }
        let Some(begin) = self.begin.take() else { return Ok(()) };
        let Link::Attached(conn) = &mut self.link else { return Ok(()) };
        let timeout = self.ctx.config.upstream.connect_timeout;
        if failed {
            open_aborted_block(conn, &begin, timeout).await
        } else {
            // It could not go back yet: the block opens on this connection.
            open_block(conn, &begin, timeout).await
        }
    }

    /// The routing NOTICE of a statement, saying which server serves it.
    pub(super) fn served_notice(&self, notice: &bytes::Bytes) -> bytes::Bytes {
        let Link::Attached(conn) = &self.link else { return notice.clone() };
        let body = notice.get(HEADER_LEN..).unwrap_or_default();
        let msg = field(body, b'M').map(String::from_utf8_lossy).unwrap_or_default();
        let msg = format!("{msg} (served by {})", conn.pool().key.target);
        encode(Severity::Notice, "00000", &msg, None).freeze()
    }
}

/// Runs the client's BEGIN on `conn`.
async fn open_block(conn: &mut Conn, begin: &str, timeout: std::time::Duration) -> Result<(), SessionError> {
    crate::pool::run_hidden(conn, begin, timeout).await.map_err(|e| {
        let msg = format!("could not open the transaction block this session began on a pooled server connection: {e}");
        SessionError::Pool(encode(Severity::Fatal, "08006", &msg, None))
    })
}

/// Opens a transaction block on `conn` and fails it on purpose: the client was told its block
/// is aborted, and from here the server gives PostgreSQL's own answers (25P02 until ROLLBACK).
pub(super) async fn open_aborted_block(conn: &mut Conn, begin: &str, timeout: std::time::Duration) -> Result<(), SessionError> {
    match crate::pool::run_hidden(conn, &format!("{begin}; SELECT 1/0"), timeout).await {
        Err(crate::pool::HiddenError::Refused(_)) => Ok(()),
        other => {
            let why = other.err().map(|e| e.to_string()).unwrap_or_else(|| "it did not fail".into());
            let msg = format!("could not keep this session's aborted transaction block open on a server connection: {why}");
            Err(SessionError::Pool(encode(Severity::Fatal, "08006", &msg, None)))
        }
    }
}
