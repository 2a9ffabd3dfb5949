//! Server → client in a pooled session: frames are walked in place and relayed in one write per
//! read. The proxy looks at the few it acts on (typed as `Backend`): ReadyForQuery ends a
//! statement (and, at the end of a transaction, gives the connection back), ParseComplete and
//! CloseComplete answering messages the proxy added are hidden or turned into what the client
//! expects, ErrorResponse and ParameterStatus feed the statement hooks.

use bytes::Buf;
use citus_proxy_cache::WriteScope;
use tokio::io::AsyncWriteExt;

use super::relay::{Link, Pooled};
use crate::error::SessionError;
use crate::pool::prepared::Answer;
use crate::session::frames::next_header;
use crate::session::relay::{End, INSPECT_LIMIT};
use crate::session::state::Pending;
use crate::wire::backend::Backend;
use crate::wire::frame::HEADER_LEN;
use crate::wire::ready::TxStatus;

const PARSE_COMPLETE: [u8; 5] = [b'1', 0, 0, 0, 4];

impl Pooled<'_> {
    /// Walks what the server sent. Returns an end when the session must stop.
    pub(super) async fn walk_server(&mut self) -> Result<Option<End>, SessionError> {
        let caching = self.ctx.cache.is_some();
        let Link::Attached(server) = &mut self.link else { return Ok(None) };
        let mut buf = std::mem::take(&mut server.buf);
        // The server's address, for the error only (a clone of a pointer, not of the text).
        let info = std::sync::Arc::clone(&server.info);
        let (mut pos, mut out_from, mut collect_from) = (0, 0, 0);
        let lost = |why: &str| SessionError::UpstreamLost(format!("{} ({why})", info.addr));
        while let Some((tag, total)) = next_header(&buf, &mut pos, &mut self.spass) {
            let total = total.ok_or_else(|| lost("invalid message length"))?;
            if self.at_statement_start && !matches!(tag, b'1' | b'3') {
                self.at_statement_start = false;
                if let Some(n) = self.pending.front_mut().and_then(|p| p.notice.take()) {
                    self.client.w.write_all(buf.get(out_from..pos).unwrap_or_default()).await.map_err(SessionError::ClientIo)?;
                    self.client.w.write_all(&n).await.map_err(SessionError::ClientIo)?;
                    out_from = pos;
                }
            }
            if !(Backend::inspected(tag) && total <= INSPECT_LIMIT) {
                self.spass = total;
                continue;
            }
            let Some(body) = buf.get(pos + HEADER_LEN..pos + total) else { break };
            let msg = Backend::decode(tag, body).map_err(|e| lost(&e.to_string()))?;
            let end = pos + total;
            match msg {
                Backend::ReadyForQuery(status) => {
                    let status = if self.side_trip { self.side_trip_status(&mut buf, pos) } else { status };
                    // What came before is relayed first: a write's invalidation and a metadata
                    // reload its statement made due finish before its ReadyForQuery is seen.
                    let before = buf.get(out_from..pos).unwrap_or_default();
                    let collected = buf.get(collect_from..pos).unwrap_or_default();
                    if self.on_ready(status, before, collected).await? {
                        out_from = pos;
                    }
                    collect_from = end;
                }
                Backend::ParseComplete | Backend::CloseComplete => match self.answer() {
                    Answer::Pass => {}
                    answer => {
                        self.client.w.write_all(buf.get(out_from..pos).unwrap_or_default()).await.map_err(SessionError::ClientIo)?;
                        if answer == Answer::ParseCompleteFromClose {
                            self.client.w.write_all(&PARSE_COMPLETE).await.map_err(SessionError::ClientIo)?;
                        }
                        if let Some(f) = self.pending.front_mut().and_then(|p| p.fill.as_mut()) {
                            f.collector.push(buf.get(collect_from..pos).unwrap_or_default());
                        }
                        out_from = end;
                        collect_from = end;
                    }
                },
                Backend::Error(body) => {
                    self.hooks.on_backend_error(body);
                    if let Some(code) = crate::wire::error_response::sqlstate(body) {
                        self.ctx.metrics.backend_error(code);
                    }
                    self.last_fatal = crate::wire::error_response::is_fatal(body);
                    self.on_server_error();
                }
                Backend::ParameterStatus(Some((name, value))) => self.hooks.on_parameter_status(name, value),
                Backend::CommandComplete(tag) => self.on_command_complete(tag),
                Backend::CopyInResponse => self.copy_in = true,
                Backend::ParameterStatus(None) | Backend::Other(_) => {}
            }
            pos = end;
        }
        if pos > out_from {
            self.client.w.write_all(buf.get(out_from..pos).unwrap_or_default()).await.map_err(SessionError::ClientIo)?;
        }
        if caching && pos > collect_from {
            if let Some(f) = self.pending.front_mut().and_then(|p| p.fill.as_mut()) {
                f.collector.push(buf.get(collect_from..pos).unwrap_or_default());
            }
        }
        self.ctx.metrics.bytes_to_client.increment(pos as u64);
        buf.advance(pos);
        let drained = buf.is_empty() && self.spass == 0;
        if let Link::Attached(server) = &mut self.link {
            server.buf = buf;
        }
        if drained && self.pending.is_empty() && self.side_trip {
            self.end_side_trip().await?;
        }
        if drained && self.pending.is_empty() {
            self.maybe_release().await;
        }
        Ok(None)
    }

    /// The front statement got its ReadyForQuery. `before` is what is still to be relayed ahead
    /// of it, `collected` its response since the last collection (for a cache fill). Returns
    /// whether `before` was written here: only when something must happen between it and the
    /// ReadyForQuery (a write's invalidation, a metadata reload the statement made due), so
    /// usually the walk relays it with the ReadyForQuery in one write.
    async fn on_ready(&mut self, status: TxStatus, before: &[u8], collected: &[u8]) -> Result<bool, SessionError> {
        self.on_transaction_status(status);
        self.tx = status;
        self.info.set_tx(status);
        self.at_statement_start = true;
        let Some(mut p) = self.pending.pop_front() else { return Ok(false) };
        self.info.set_busy_since(self.pending.front().map(|n| n.started));
        if let Some(mut f) = p.fill.take() {
            f.collector.push(collected);
            crate::session::to_client::complete_fill(f);
        }
        let stale = self.settle_writes(&mut p, status);
        let wait = self.finished(&p, status);
        let stale = if self.ctx.cache.is_some() { stale } else { Vec::new() };
        if stale.is_empty() && wait.is_none() {
            return Ok(false);
        }
        self.client.w.write_all(before).await.map_err(SessionError::ClientIo)?;
        if let Some(cache) = &self.ctx.cache {
            for scope in &stale {
                cache.invalidate(scope).await;
            }
        }
        if let Some(wait) = wait {
            wait.await;
        }
        Ok(true)
    }

    /// Metrics and hooks of a statement that ended; returns what must finish before its
    /// ReadyForQuery is relayed (a metadata reload the statement made due).
    pub(super) fn finished(&mut self, p: &Pending, status: TxStatus) -> Option<crate::hooks::ReadyWait> {
        let elapsed = p.started.elapsed();
        self.ctx.metrics.record(p.route, p.class, elapsed);
        if let Some(shape) = p.shape {
            self.ctx.shapes.record(shape, p.route, elapsed);
        }
        self.info.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.hooks.on_ready(status, elapsed);
        self.hooks.before_ready()
    }

    /// What a statement that just ended makes stale now: its own writes and, when this ends the
    /// transaction block, those of the whole block. Inside a block they wait for its end.
    fn settle_writes(&mut self, p: &mut Pending, status: TxStatus) -> Vec<WriteScope> {
        let writes = std::mem::take(&mut p.writes);
        for w in writes {
            if !self.tx_writes.contains(&w) {
                self.tx_writes.push(w);
            }
        }
        if status == TxStatus::Idle {
            std::mem::take(&mut self.tx_writes)
        } else {
            Vec::new()
        }
    }
}
