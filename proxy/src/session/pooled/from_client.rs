//! Client → server in a pooled session: frames are walked in place, decoded into typed
//! messages, and queued for the server connection the client holds (taken from the pool at the
//! first message that needs one). The proxy answers a few itself (a Sync with nothing before
//! it, a cached read); frames too large to inspect are streamed.

use std::time::Instant;

use bytes::{Buf, BytesMut};
use citus_proxy_cache::WriteScope;
use tokio::io::AsyncWriteExt;

use super::relay::{Link, Pooled, Walk};
use super::rename::Renamed;
use crate::caching::CachePlan;
use crate::config::PoolMode;
use crate::error::SessionError;
use crate::hooks::StatementNote;
use crate::session::cache_step::{self, Outcome};
use crate::session::frames::next_header;
use crate::session::relay::INSPECT_LIMIT;
use crate::wire::frame::{is_frontend_tag, within_backend_limit, HEADER_LEN};
use crate::wire::frontend::Frontend;
use crate::wire::ready::{self, TxStatus};

/// A whole frame's body.
fn body_of(frame: &[u8]) -> &[u8] {
    frame.get(HEADER_LEN..).unwrap_or_default()
}

impl Pooled<'_> {
    /// Walks the client's buffered frames until more bytes are needed or it said goodbye.
    pub(super) async fn walk_client(&mut self) -> Result<Walk, SessionError> {
        let max = self.ctx.live().limits.max_message_size as usize + 1;
        loop {
            if self.side_trip {
                // The rest waits for the side trip's ReadyForQuery (see `place`).
                return Ok(Walk::NeedMore(0));
            }
            if self.pass > 0 {
                // A frame streamed through: its bytes go on as they come.
                let n = self.pass.min(self.client.buf.len());
                self.sout.extend_from_slice(self.client.buf.get(..n).unwrap_or_default());
                self.client.buf.advance(n);
                self.pass -= n;
                if self.pass > 0 {
                    return Ok(Walk::NeedMore(0));
                }
            }
            let (mut pos, mut no_pass) = (0, 0);
            let Some((tag, total)) = next_header(&self.client.buf, &mut pos, &mut no_pass) else { return Ok(Walk::NeedMore(0)) };
            let total = total.ok_or_else(|| SessionError::Protocol("invalid message length".into()))?;
            if !is_frontend_tag(tag) || tag == b'p' {
                return Err(SessionError::Protocol(format!("invalid frontend message type {tag}")));
            }
            if total > max {
                return Err(SessionError::Protocol(format!("message of {total} bytes exceeds limits.max_message_size ({})", max - 1)));
            }
            if !within_backend_limit(tag, total) {
                return Err(SessionError::Protocol(format!("invalid message length: {total} bytes for message type {:?}", tag as char)));
            }
            if self.client.buf.len() < total {
                if self.streamable(tag, total) {
                    self.on_streamed(tag).await?;
                    self.pass = total;
                    continue;
                }
                return Ok(Walk::NeedMore(total));
            }
            if tag == b'X' {
                self.client.buf.advance(total);
                return Ok(Walk::Terminate);
            }
            let frame = self.client.buf.split_to(total);
            let msg = Frontend::decode(tag, frame.get(HEADER_LEN..).unwrap_or_default())?;
            self.on_message(msg, &frame).await?;
        }
    }

    /// Frames the proxy may pass on before it has all of them: COPY data, and statements too
    /// large to analyse (unless their statement name must be rewritten first).
    fn streamable(&self, tag: u8, total: usize) -> bool {
        match tag {
            b'd' => matches!(self.link, Link::Attached(_)),
            b'Q' | b'F' => total > INSPECT_LIMIT,
            b'P' | b'B' => total > INSPECT_LIMIT && !self.renames(),
            _ => false,
        }
    }

    /// Whether named statements get proxy-chosen names on the server (transaction mode; fixed
    /// for the session, as `pool.max_prepared_statements` needs a restart).
    pub(super) fn renames(&self) -> bool {
        self.renaming
    }

    /// A frame that goes on unread: the bookkeeping its kind needs.
    async fn on_streamed(&mut self, tag: u8) -> Result<(), SessionError> {
        match tag {
            b'Q' | b'F' => {
                let mut note = StatementNote::default();
                if self.ctx.cache.is_some() {
                    // Unanalysed: it may have written anything.
                    note.cache = CachePlan::Write(vec![WriteScope::Everything]);
                }
                self.attach().await?;
                self.push(Instant::now(), note);
                self.expect_ready(tag == b'Q');
            }
            b'P' | b'B' => {
                if tag == b'P' {
                    self.hooks.on_unseen_parse();
                }
                self.open_batch();
                self.attach().await?;
            }
            _ => {}
        }
        Ok(())
    }

    fn open_batch(&mut self) {
        self.batch_start.get_or_insert_with(Instant::now);
        self.batch_open = true;
    }

    fn check_pin(&mut self, sql: &[u8]) {
        if self.mode == PoolMode::Transaction && !self.pinned && super::pin::pins(sql) {
            self.pinned = true;
            self.info.set_pinned();
        }
    }

    /// One whole client message; `frame` is its bytes as received.
    async fn on_message(&mut self, msg: Frontend<'_>, frame: &[u8]) -> Result<(), SessionError> {
        if !matches!(msg, Frontend::Sync | Frontend::Flush | Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_)) {
            self.syncs_after_execute = 0;
        }
        let detached = matches!(self.link, Link::Detached);
        match msg {
            Frontend::Query(sql) => return self.on_query(sql, frame).await,
            Frontend::Sync if detached && !self.batch_open && self.pending.is_empty() => {
                // Nothing before it: ReadyForQuery, without taking a connection.
                return self.client.w.write_all(&ready::frame(self.tx)).await.map_err(SessionError::ClientIo);
            }
            Frontend::Flush if detached && !self.batch_open => return Ok(()),
            // Outside COPY PostgreSQL ignores these; so does the proxy.
            Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_) if detached => return Ok(()),
            Frontend::Sync if detached && self.held_closes_only() => {
                let note = self.hooks.on_sync(None);
                return self.answer_held_closes(note).await;
            }
            Frontend::Sync => {
                let started = self.batch_start.take().unwrap_or_else(Instant::now);
                let note = self.hooks.on_sync(None);
                self.batch_open = false;
                // Parse/Describe before a deferred BEGIN's first Bind: answered by the
                // coordinator outside the transaction, which stays unplaced.
                self.side_trip = detached && self.begin.is_some() && self.placing;
                self.attach().await?;
                self.push(started, note);
                self.expect_ready(false);
                self.syncs_after_execute += 1;
            }
            Frontend::CopyDone | Frontend::CopyFail(_) => self.copy_ended(),
            Frontend::CopyData(_) => {}
            Frontend::FunctionCall(_) => {
                let mut note = StatementNote::default();
                if self.ctx.cache.is_some() {
                    note.cache = CachePlan::Write(vec![WriteScope::Everything]);
                }
                self.attach().await?;
                self.push(Instant::now(), note);
                self.expect_ready(false);
            }
            Frontend::Parse(parse) => {
                self.open_batch();
                self.check_pin(parse.sql);
                self.on_session_sql(parse.sql);
                self.hooks.on_parse(&parse);
                if self.hold(Renamed::Parse, frame) {
                    return Ok(());
                }
                self.attach().await?;
                if self.renames() {
                    return self.rename(Renamed::Parse, body_of(frame));
                }
            }
            Frontend::Bind(bind) => {
                self.open_batch();
                self.hooks.on_bind(&bind);
                if detached && self.placing {
                    let placement = self.hooks.bind_placement();
                    self.attach_for(&placement).await?;
                }
                self.attach().await?;
                if self.renames() {
                    return self.rename(Renamed::Bind, body_of(frame));
                }
            }
            Frontend::Describe(_) => {
                self.open_batch();
                if self.hold(Renamed::Describe, frame) {
                    return Ok(());
                }
                self.attach().await?;
                if self.renames() {
                    return self.rename(Renamed::Describe, body_of(frame));
                }
            }
            Frontend::Close(c) => {
                self.open_batch();
                self.hooks.on_close(c.kind, c.name);
                if self.hold(Renamed::Close, frame) {
                    return Ok(());
                }
                self.attach().await?;
                if self.renames() {
                    return self.rename(Renamed::Close, body_of(frame));
                }
            }
            Frontend::Execute(_) | Frontend::Flush => {
                self.open_batch();
                self.attach().await?;
            }
            Frontend::Terminate => {}
        }
        self.sout.extend_from_slice(frame);
        Ok(())
    }

    /// CopyDone/CopyFail: the Syncs sent while COPY FROM STDIN ran get no ReadyForQuery of
    /// their own, so their entries are folded into the one before them.
    fn copy_ended(&mut self) {
        if std::mem::take(&mut self.copy_in) {
            if self.renames() {
                self.fixups.forget_ready(self.syncs_after_execute);
            }
            for _ in 0..self.syncs_after_execute.min(self.pending.len()) {
                if let Some(mut p) = self.pending.pop_back() {
                    self.batch_start = Some(p.started);
                    match self.pending.back_mut() {
                        Some(prev) => prev.writes.append(&mut p.writes),
                        None => self.tx_writes.append(&mut p.writes),
                    }
                }
            }
        }
        self.syncs_after_execute = 0;
    }

    async fn on_query(&mut self, sql: &[u8], frame: &[u8]) -> Result<(), SessionError> {
        if self.deallocated_here(sql).await? {
            return Ok(());
        }
        let note = self.hooks.on_query(sql);
        self.check_pin(sql);
        self.on_session_sql(sql);
        let Some(note) = self.defer_begin(sql, note).await? else { return Ok(()) };
        if let (CachePlan::Read(plan), Some(cache), true) = (&note.cache, &self.ctx.cache, self.quiet()) {
            // A cached answer needs no server connection at all.
            let started = Instant::now();
            match cache_step::lookup(cache, plan).await {
                Outcome::Serve(bytes) => return self.serve_cached(started, note, &bytes).await,
                Outcome::Fill(filling) => {
                    self.attach_for(&note.placement).await?;
                    self.push(started, note);
                    if let Some(p) = self.pending.back_mut() {
                        p.fill = Some(filling);
                    }
                    self.expect_ready(true);
                    self.sout.extend_from_slice(frame);
                    return Ok(());
                }
                Outcome::Forward => {}
            }
        }
        self.attach_for(&note.placement).await?;
        self.push(Instant::now(), note);
        self.expect_ready(true);
        self.sout.extend_from_slice(frame);
        Ok(())
    }

    /// SQL `DEALLOCATE name` of one of the client's protocol-level statements: they exist on the
    /// server under other names, so the proxy answers it (when nothing else is in flight).
    async fn deallocated_here(&mut self, sql: &[u8]) -> Result<bool, SessionError> {
        if !self.renames() || !self.quiet() || !sql.get(..10).is_some_and(|w| w.eq_ignore_ascii_case(b"deallocate")) {
            return Ok(false);
        }
        let Ok(text) = std::str::from_utf8(sql) else { return Ok(false) };
        let Some(crate::settings::SessionCommand::Deallocate(name)) = crate::settings::session_command(text) else { return Ok(false) };
        if !self.statements.deallocate(name) {
            return Ok(false);
        }
        let mut out = BytesMut::with_capacity(32);
        out.extend_from_slice(&crate::wire::frame::build(b'C', b"DEALLOCATE\0"));
        out.extend_from_slice(&ready::frame(self.tx));
        self.client.w.write_all(&out).await.map_err(SessionError::ClientIo)?;
        Ok(true)
    }

    /// Nothing in flight and no transaction: an answer written now cannot overtake anything.
    pub(super) fn quiet(&self) -> bool {
        self.pending.is_empty() && !self.batch_open && self.tx == TxStatus::Idle && !self.copy_in && self.sout.is_empty()
    }

    async fn serve_cached(&mut self, started: Instant, mut note: StatementNote, answer: &[u8]) -> Result<(), SessionError> {
        let mut out = BytesMut::with_capacity(answer.len() + 64);
        if let Some(n) = note.notice.take() {
            out.extend_from_slice(&n);
        }
        out.extend_from_slice(answer);
        out.extend_from_slice(&ready::frame(TxStatus::Idle));
        self.client.w.write_all(&out).await.map_err(SessionError::ClientIo)?;
        self.ctx.metrics.bytes_to_client.increment(out.len() as u64);
        let p = crate::session::state::Pending::new(started, note);
        if let Some(wait) = self.finished(&p, TxStatus::Idle) {
            wait.await;
        }
        Ok(())
    }
}
