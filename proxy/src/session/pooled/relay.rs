//! The pooled session's relay: one task, one explicit state (`Link`: no server, or a checked-out
//! one), frames walked in place. Client frames go to the server connection the client holds,
//! taken from the pool at the first frame that needs one; server frames go back, and the
//! ReadyForQuery that ends a transaction gives the connection back (transaction mode).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use citus_proxy_cache::WriteScope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::cancel::PooledCancel;
use crate::caching::CachePlan;
use crate::config::PoolMode;
use crate::context::Context;
use crate::error::SessionError;
use crate::hooks::{StatementHooks, StatementNote};
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::pool::{Pool, ServerConn};
use crate::session::cache_step::{self, Outcome};
use crate::session::frames::next_header;
use crate::session::relay::{End, INSPECT_LIMIT, READ_CHUNK};
use crate::session::state::Pending;
use crate::sessions::SessionInfo;
use crate::shutdown::{reached, Phase};
use crate::wire::bind::BindView;
use crate::wire::describe::DescribeView;
use crate::wire::frame::{is_frontend_tag, within_backend_limit, HEADER_LEN};
use crate::wire::parse::ParseView;
use crate::wire::query;
use crate::wire::ready::{self, TxStatus};

/// The client side of a pooled session.
pub struct Client {
    pub r: ReadHalf,
    pub w: WriteHalf,
    pub buf: BytesMut,
}

/// What the session holds of the server side.
enum Link {
    /// No server connection: the client is between transactions (transaction mode) or has not
    /// needed one yet.
    Detached,
    Attached(ServerConn),
}

pub struct Pooled<'a> {
    pub ctx: &'a Arc<Context>,
    pub mode: PoolMode,
    pub pool: Arc<Pool>,
    pub client: Client,
    pub hooks: Box<dyn StatementHooks>,
    pub info: Arc<SessionInfo>,
    pub cancel: Arc<PooledCancel>,
    link: Link,
    /// Bytes for the server, written once per walk of the client's buffer.
    sout: BytesMut,
    /// Statements (Query, Sync, FunctionCall) waiting for their ReadyForQuery.
    pending: VecDeque<Pending>,
    /// Extended-protocol messages were sent since the last Sync: the transaction is not over
    /// even if nothing waits for a ReadyForQuery.
    batch_open: bool,
    batch_start: Option<Instant>,
    tx: TxStatus,
    /// Bound to its server connection until it leaves (see `pin`).
    pinned: bool,
    copy_in: bool,
    syncs_after_execute: usize,
    /// Bytes of a frame being streamed through without inspection, still to come (client side).
    pass: usize,
    /// Same, server side.
    spass: usize,
    at_statement_start: bool,
    last_fatal: bool,
    /// Writes of the open transaction block, invalidated when it ends.
    tx_writes: Vec<WriteScope>,
}

/// What a client frame asks of the walk.
enum Walk {
    /// More bytes are needed.
    NeedMore(usize),
    /// The client sent Terminate.
    Terminate,
}

impl<'a> Pooled<'a> {
    pub fn new(
        ctx: &'a Arc<Context>,
        mode: PoolMode,
        pool: Arc<Pool>,
        client: Client,
        hooks: Box<dyn StatementHooks>,
        info: Arc<SessionInfo>,
        cancel: Arc<PooledCancel>,
    ) -> Pooled<'a> {
        Pooled {
            ctx,
            mode,
            pool,
            client,
            hooks,
            info,
            cancel,
            link: Link::Detached,
            sout: BytesMut::with_capacity(4096),
            pending: VecDeque::with_capacity(4),
            batch_open: false,
            batch_start: None,
            tx: TxStatus::Idle,
            pinned: false,
            copy_in: false,
            syncs_after_execute: 0,
            pass: 0,
            spass: 0,
            at_statement_start: true,
            last_fatal: false,
            tx_writes: Vec::new(),
        }
    }

    /// Runs the session to its end, then gives back (or closes) its server connection.
    pub async fn run(mut self, mut phase: watch::Receiver<Phase>) -> Result<End, SessionError> {
        let result = self.serve(&mut phase).await;
        let farewell = match &result {
            Err(e) => e.to_client(),
            Ok(End::Drained) | Ok(End::Closed) => SessionError::Shutdown.to_client(),
            Ok(_) => None,
        };
        if let Some(msg) = farewell {
            let _ = self.client.w.write_all(&msg).await;
        }
        let _ = self.client.w.shutdown().await;
        let unsettled: Vec<WriteScope> = std::mem::take(&mut self.tx_writes)
            .into_iter()
            .chain(self.pending.iter_mut().flat_map(|p| std::mem::take(&mut p.writes)))
            .collect();
        if let (Some(cache), false) = (&self.ctx.cache, unsettled.is_empty()) {
            for scope in &unsettled {
                cache.invalidate(scope).await;
            }
        }
        self.release_at_end().await;
        result
    }

    async fn serve(&mut self, phase: &mut watch::Receiver<Phase>) -> Result<End, SessionError> {
        let idle_timeout = self.ctx.live().limits.idle_timeout;
        loop {
            match self.walk_client().await? {
                Walk::Terminate => return Ok(End::ClientTerminated),
                Walk::NeedMore(need) => {
                    self.flush_server().await?;
                    self.client.buf.reserve(need.saturating_sub(self.client.buf.len()).max(READ_CHUNK));
                }
            }
            let idle = self.pending.is_empty() && self.tx == TxStatus::Idle && !self.batch_open;
            let can_drain = idle && !self.pinned_or_session();
            match &mut self.link {
                Link::Detached => {
                    let read = self.client.r.read_buf(&mut self.client.buf);
                    let timeout = async {
                        if idle_timeout.is_zero() || !idle {
                            std::future::pending::<()>().await
                        } else {
                            tokio::time::sleep(idle_timeout).await
                        }
                    };
                    tokio::select! {
                        n = read => {
                            if n.map_err(SessionError::ClientIo)? == 0 {
                                return Ok(End::ClientGone);
                            }
                        }
                        _ = timeout => return Err(SessionError::IdleTimeout),
                        // Admin console KILL (added for the console's KILL command).
                        _ = self.info.killed() => return Err(SessionError::Killed),
                        _ = reached(phase, Phase::Draining), if idle => return Ok(End::Drained),
                    }
                }
                Link::Attached(server) => {
                    let server_buf = &mut server.buf;
                    let server_r = &mut server.r;
                    server_buf.reserve(READ_CHUNK);
                    let mut closing = phase.clone();
                    let from_server = tokio::select! {
                        n = self.client.r.read_buf(&mut self.client.buf) => {
                            if n.map_err(SessionError::ClientIo)? == 0 {
                                return Ok(End::ClientGone);
                            }
                            false
                        }
                        n = server_r.read_buf(server_buf) => {
                            if n.map_err(SessionError::UpstreamIo)? == 0 {
                                return if self.last_fatal { Ok(End::UpstreamClosed) } else { Err(SessionError::UpstreamLost(self.ctx.connector.addr().to_string())) };
                            }
                            true
                        }
                        _ = reached(phase, Phase::Draining), if can_drain => return Ok(End::Drained),
                        _ = reached(&mut closing, Phase::Closing) => return Ok(End::Closed),
                        // Admin console KILL: the server connection is closed at release (not clean).
                        _ = self.info.killed() => return Err(SessionError::Killed),
                    };
                    if from_server {
                        if let Some(end) = self.walk_server().await? {
                            return Ok(end);
                        }
                    }
                }
            }
        }
    }

    fn pinned_or_session(&self) -> bool {
        self.pinned || self.mode == PoolMode::Session
    }

    /// Makes sure a server connection is attached, taking one from the pool if needed. The
    /// bytes already queued for the server stay queued.
    async fn attach(&mut self) -> Result<(), SessionError> {
        if matches!(self.link, Link::Attached(_)) {
            return Ok(());
        }
        self.info.set_waiting(true);
        let got = self.ctx.pools.checkout(self.ctx, &self.pool, self.info.id).await;
        self.info.set_waiting(false);
        let conn = match got {
            Ok(c) => c,
            Err(e) => return Err(SessionError::Pool(e.to_client())),
        };
        self.cancel.attach(&conn.key);
        self.link = Link::Attached(conn);
        Ok(())
    }

    /// Gives the server connection back when the transaction is over (transaction mode).
    async fn maybe_release(&mut self) {
        if self.mode != PoolMode::Transaction || self.pinned {
            return;
        }
        if !(self.pending.is_empty() && !self.batch_open && self.tx == TxStatus::Idle && !self.copy_in && self.sout.is_empty()) {
            return;
        }
        let Link::Attached(conn) = std::mem::replace(&mut self.link, Link::Detached) else { return };
        let touched = self.cancel.detach(self.ctx.config.upstream.connect_timeout).await;
        let reusable = !touched && conn.buf.is_empty() && self.spass == 0;
        self.ctx.pools.checkin(self.ctx, &self.pool, conn, reusable).await;
    }

    /// At the end of the session: a connection in a clean state goes back (reset first in
    /// session mode), any other is closed.
    async fn release_at_end(&mut self) {
        let Link::Attached(mut conn) = std::mem::replace(&mut self.link, Link::Detached) else { return };
        let touched = self.cancel.detach(self.ctx.config.upstream.connect_timeout).await;
        let clean = !touched
            && self.pending.is_empty()
            && !self.batch_open
            && self.tx == TxStatus::Idle
            && !self.copy_in
            && conn.buf.is_empty()
            && self.spass == 0;
        let mut reusable = clean;
        if clean && (self.mode == PoolMode::Session || self.pinned) {
            let reset = self.ctx.live().pool.reset_query.clone();
            // A pinned client's connection holds what pinned it (LISTEN, temporary tables…):
            // DISCARD ALL clears it whatever the reset query says.
            let reset = if self.pinned && reset.trim().is_empty() { "DISCARD ALL".to_string() } else { reset };
            if !reset.trim().is_empty() {
                reusable = crate::pool::run_hidden(&mut conn, &reset, self.ctx.config.upstream.connect_timeout).await.is_ok();
            }
        }
        self.ctx.pools.checkin(self.ctx, &self.pool, conn, reusable).await;
    }

    async fn flush_server(&mut self) -> Result<(), SessionError> {
        if self.sout.is_empty() {
            return Ok(());
        }
        let Link::Attached(server) = &mut self.link else {
            // Nothing can be queued without a server: attach() comes first.
            self.sout.clear();
            return Ok(());
        };
        server.w.write_all(&self.sout).await.map_err(SessionError::UpstreamIo)?;
        self.ctx.metrics.bytes_to_upstream.increment(self.sout.len() as u64);
        self.sout.clear();
        Ok(())
    }

    fn push(&mut self, started: Instant, note: StatementNote) {
        let p = Pending::new(started, note);
        if self.pending.is_empty() {
            self.info.set_busy_since(Some(p.started));
        }
        self.pending.push_back(p);
    }

    /// Walks the client's buffered frames: each one is queued for the server (a server is taken
    /// first when none is attached), answered by the proxy, or streamed when too large.
    async fn walk_client(&mut self) -> Result<Walk, SessionError> {
        let max = self.ctx.live().limits.max_message_size as usize + 1;
        loop {
            // A frame streamed through: its bytes go on as they come.
            if self.pass > 0 {
                let n = self.pass.min(self.client.buf.len());
                if n > 0 {
                    self.attach().await?;
                    self.sout.extend_from_slice(self.client.buf.get(..n).unwrap_or_default());
                    self.client.buf.advance(n);
                    self.pass -= n;
                }
                if self.pass > 0 {
                    return Ok(Walk::NeedMore(0));
                }
            }
            let mut pos = 0;
            let mut nopass = 0;
            let Some((tag, total)) = next_header(&self.client.buf, &mut pos, &mut nopass) else { return Ok(Walk::NeedMore(0)) };
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
                // Large frames the proxy need not read (COPY data, huge literals) are streamed.
                let streamable = matches!(tag, b'd') || (total > INSPECT_LIMIT && matches!(tag, b'Q' | b'F' | b'B' | b'P'));
                if streamable {
                    self.before_frame(tag, None).await?;
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
            let body = frame.get(HEADER_LEN..).unwrap_or_default();
            self.on_frame(tag, body, &frame).await?;
        }
    }

    /// What a frame does to the session's bookkeeping before it goes out; `body` None for a
    /// frame streamed without being read.
    async fn before_frame(&mut self, tag: u8, body: Option<&[u8]>) -> Result<(), SessionError> {
        if !matches!(tag, b'S' | b'H' | b'd' | b'c' | b'f') {
            self.syncs_after_execute = 0;
        }
        match tag {
            b'Q' | b'F' => {
                let mut note = StatementNote::default();
                if let (b'Q', Some(body)) = (tag, body) {
                    let sql = query::sql(body)?;
                    note = self.hooks.on_query(sql);
                    if self.mode == PoolMode::Transaction && !self.pinned && super::pin::pins(sql) {
                        self.pin();
                    }
                } else if self.ctx.cache.is_some() {
                    note.cache = CachePlan::Write(vec![WriteScope::Everything]);
                }
                self.attach().await?;
                self.push(Instant::now(), note);
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => {
                self.batch_start.get_or_insert_with(Instant::now);
                self.batch_open = true;
                if let Some(body) = body {
                    match tag {
                        b'P' => {
                            let parse = ParseView::decode(body)?;
                            if self.mode == PoolMode::Transaction && !self.pinned && super::pin::pins(parse.sql) {
                                self.pin();
                            }
                            self.hooks.on_parse(&parse);
                        }
                        b'B' => self.hooks.on_bind(&BindView::decode(body)?),
                        b'C' => {
                            let c = DescribeView::decode(body)?;
                            self.hooks.on_close(c.kind, c.name);
                        }
                        _ => {}
                    }
                } else if tag == b'P' {
                    self.hooks.on_unseen_parse();
                }
                self.attach().await?;
            }
            b'S' => {
                let started = self.batch_start.take().unwrap_or_else(Instant::now);
                let mut note = self.hooks.on_sync(None);
                if !self.batch_open && self.ctx.cache.is_some() && matches!(note.cache, CachePlan::Read(_)) {
                    note.cache = CachePlan::None;
                }
                self.batch_open = false;
                self.attach().await?;
                self.push(started, note);
                self.syncs_after_execute += 1;
            }
            b'c' | b'f' => {
                if std::mem::take(&mut self.copy_in) {
                    // Syncs sent while COPY FROM STDIN ran get no ReadyForQuery of their own.
                    for _ in 0..self.syncs_after_execute.min(self.pending.len()) {
                        if let Some(mut p) = self.pending.pop_back() {
                            self.batch_start = Some(p.started);
                            if let Some(front) = self.pending.back_mut() {
                                front.writes.append(&mut p.writes);
                            } else {
                                self.tx_writes.append(&mut p.writes);
                            }
                        }
                    }
                }
                self.syncs_after_execute = 0;
            }
            _ => {}
        }
        Ok(())
    }

    fn pin(&mut self) {
        self.pinned = true;
        self.info.set_pinned();
    }

    /// One whole client frame.
    async fn on_frame(&mut self, tag: u8, body: &[u8], frame: &[u8]) -> Result<(), SessionError> {
        match tag {
            b'Q' => {
                let sql = query::sql(body)?;
                let note = self.hooks.on_query(sql);
                if self.mode == PoolMode::Transaction && !self.pinned && super::pin::pins(sql) {
                    self.pin();
                }
                self.syncs_after_execute = 0;
                if let CachePlan::Read(plan) = &note.cache {
                    // A cached answer needs no server connection at all.
                    if let (Some(cache), true) = (&self.ctx.cache, self.quiet()) {
                        let started = Instant::now();
                        match cache_step::lookup(cache, plan).await {
                            Outcome::Serve(bytes) => return self.serve_cached(started, note, &bytes).await,
                            Outcome::Fill(filling) => {
                                self.attach().await?;
                                self.push(started, note);
                                if let Some(p) = self.pending.back_mut() {
                                    p.fill = Some(filling);
                                }
                                self.sout.extend_from_slice(frame);
                                return Ok(());
                            }
                            Outcome::Forward => {}
                        }
                    }
                }
                self.attach().await?;
                self.push(Instant::now(), note);
                self.sout.extend_from_slice(frame);
            }
            b'S' if !self.batch_open && matches!(self.link, Link::Detached) && self.pending.is_empty() => {
                // A Sync with nothing before it: ReadyForQuery, without taking a connection.
                self.client.w.write_all(&ready::frame(self.tx)).await.map_err(SessionError::ClientIo)?;
            }
            b'H' if !self.batch_open && matches!(self.link, Link::Detached) => {}
            b'd' | b'c' | b'f' if matches!(self.link, Link::Detached) => {
                // Outside COPY PostgreSQL ignores these; so does the proxy.
            }
            _ => {
                self.before_frame(tag, Some(body)).await?;
                self.sout.extend_from_slice(frame);
            }
        }
        Ok(())
    }

    /// Nothing in flight and no transaction: an answer written now cannot overtake anything.
    fn quiet(&self) -> bool {
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
        let elapsed = started.elapsed();
        self.ctx.metrics.record(note.route, note.class, elapsed);
        if let Some(shape) = note.shape {
            self.ctx.shapes.record(shape, note.route, elapsed);
        }
        self.hooks.on_ready(TxStatus::Idle, elapsed);
        self.info.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(wait) = self.hooks.before_ready() {
            wait.await;
        }
        Ok(())
    }

    /// Walks what the server sent: relayed to the client in one write, with the few frames the
    /// proxy acts on looked at on the way. Returns an end when the session must stop.
    async fn walk_server(&mut self) -> Result<Option<End>, SessionError> {
        let addr = self.ctx.connector.addr();
        let caching = self.ctx.cache.is_some();
        let Link::Attached(server) = &mut self.link else { return Ok(None) };
        let mut buf = std::mem::take(&mut server.buf);
        let mut pos = 0;
        let mut out_from = 0;
        let mut collect_from = 0;
        let mut released = false;
        let lost = |why: &str| SessionError::UpstreamLost(format!("{addr} ({why})"));
        while let Some((tag, total)) = next_header(&buf, &mut pos, &mut self.spass) {
            let total = total.ok_or_else(|| lost("invalid message length"))?;
            if self.at_statement_start {
                self.at_statement_start = false;
                if let Some(n) = self.pending.front_mut().and_then(|p| p.notice.take()) {
                    self.client.w.write_all(buf.get(out_from..pos).unwrap_or_default()).await.map_err(SessionError::ClientIo)?;
                    self.client.w.write_all(&n).await.map_err(SessionError::ClientIo)?;
                    out_from = pos;
                }
            }
            if tag == b'G' {
                self.copy_in = true;
            }
            let inspect = matches!(tag, b'Z' | b'E') || (caching && tag == b'S');
            if !(inspect && total <= INSPECT_LIMIT) {
                self.spass = total;
                continue;
            }
            let Some(body) = buf.get(pos + HEADER_LEN..pos + total) else { break };
            match tag {
                b'Z' => {
                    let status = TxStatus::from_body(body).ok_or_else(|| lost("malformed ReadyForQuery"))?;
                    pos += total;
                    self.tx = status;
                    self.info.set_tx(status);
                    self.at_statement_start = true;
                    if let Some(mut p) = self.pending.pop_front() {
                        self.info.set_busy_since(self.pending.front().map(|n| n.started));
                        self.info.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Some(mut f) = p.fill.take() {
                            f.collector.push(buf.get(collect_from..pos - total).unwrap_or_default());
                            crate::session::to_client::complete_fill(f);
                        }
                        let stale = self.settle_writes(&mut p, status);
                        if !stale.is_empty() {
                            // The write's ReadyForQuery reaches the client only after its
                            // invalidation is published.
                            self.client
                                .w
                                .write_all(buf.get(out_from..pos - total).unwrap_or_default())
                                .await
                                .map_err(SessionError::ClientIo)?;
                            out_from = pos - total;
                            if let Some(cache) = &self.ctx.cache {
                                for scope in &stale {
                                    cache.invalidate(scope).await;
                                }
                            }
                        }
                        let elapsed = p.started.elapsed();
                        self.ctx.metrics.record(p.route, p.class, elapsed);
                        if let Some(shape) = p.shape {
                            self.ctx.shapes.record(shape, p.route, elapsed);
                        }
                        self.hooks.on_ready(status, elapsed);
                        if let Some(wait) = self.hooks.before_ready() {
                            self.client
                                .w
                                .write_all(buf.get(out_from..pos - total).unwrap_or_default())
                                .await
                                .map_err(SessionError::ClientIo)?;
                            out_from = pos - total;
                            wait.await;
                        }
                    }
                    collect_from = pos;
                    if self.pending.is_empty() && pos == buf.len() {
                        released = true;
                    }
                }
                b'E' => {
                    self.hooks.on_backend_error(body);
                    if let Some(code) = crate::wire::error_response::sqlstate(body) {
                        self.ctx.metrics.backend_error(code);
                    }
                    self.last_fatal = crate::wire::error_response::is_fatal(body);
                    pos += total;
                }
                _ => {
                    if let Some((name, value)) = crate::wire::parameter_status::decode(body) {
                        self.hooks.on_parameter_status(name, value);
                    }
                    pos += total;
                }
            }
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
        if let Link::Attached(server) = &mut self.link {
            server.buf = buf;
        }
        if released || (self.spass == 0 && pos > 0 && self.pending.is_empty()) {
            self.maybe_release().await;
        }
        Ok(None)
    }

    /// What a statement that just ended makes stale now: its own writes and, when this ends the
    /// transaction block, those of the whole block. Inside a block they wait for its end.
    fn settle_writes(&mut self, p: &mut Pending, status: TxStatus) -> Vec<WriteScope> {
        let writes = std::mem::take(&mut p.writes);
        if status == TxStatus::Idle {
            let mut all = std::mem::take(&mut self.tx_writes);
            for w in writes {
                if !all.contains(&w) {
                    all.push(w);
                }
            }
            all
        } else {
            for w in writes {
                if !self.tx_writes.contains(&w) {
                    self.tx_writes.push(w);
                }
            }
            Vec::new()
        }
    }
}
