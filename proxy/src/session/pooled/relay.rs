//! The pooled session's relay: one task, one explicit state (`Link`: no server, or a checked-out
//! one), frames walked in place. Client frames go to the server connection the client holds,
//! taken from the pool at the first frame that needs one; server frames go back, and the
//! ReadyForQuery that ends a transaction gives the connection back (transaction mode).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use citus_proxy_cache::WriteScope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::cancel::PooledCancel;
use crate::config::PoolMode;
use crate::context::Context;
use crate::error::SessionError;
use crate::hooks::{StatementHooks, StatementNote};
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::pool::carry::ClientSettings;
use crate::pool::prepared::{ClientStatements, ResponseFixups};
use crate::pool::{Conn, Pool};
use crate::session::relay::{End, READ_CHUNK};
use crate::session::state::Pending;
use crate::sessions::SessionInfo;
use crate::shutdown::{reached, Phase};
use crate::wire::ready::TxStatus;

/// Read room of a client between transactions (a statement rarely needs more; a bigger one is
/// read in more steps, and the buffer grows to its size).
const IDLE_CHUNK: usize = 2048;

/// The client side of a pooled session.
pub struct Client {
    pub r: ReadHalf,
    pub w: WriteHalf,
    pub buf: BytesMut,
}

/// What the session holds of the server side.
pub(super) enum Link {
    /// No server connection: the client is between transactions (transaction mode) or has not
    /// needed one yet.
    Detached,
    Attached(Conn),
}

pub struct Pooled<'a> {
    pub ctx: &'a Arc<Context>,
    pub mode: PoolMode,
    pub pool: Arc<Pool>,
    pub client: Client,
    pub hooks: Box<dyn StatementHooks>,
    pub info: Arc<SessionInfo>,
    pub cancel: Arc<PooledCancel>,
    pub(super) link: Link,
    /// Bytes for the server, written once per walk of the client's buffer.
    pub(super) sout: BytesMut,
    /// Statements (Query, Sync, FunctionCall) waiting for their ReadyForQuery.
    pub(super) pending: VecDeque<Pending>,
    /// Extended-protocol messages were sent since the last Sync: the transaction is not over
    /// even if nothing waits for a ReadyForQuery.
    pub(super) batch_open: bool,
    pub(super) batch_start: Option<Instant>,
    pub(super) tx: TxStatus,
    /// Bound to its server connection until it leaves (see `pin`).
    pub(super) pinned: bool,
    pub(super) copy_in: bool,
    pub(super) syncs_after_execute: usize,
    /// Bytes of a frame being streamed through without inspection, still to come (client side).
    pub(super) pass: usize,
    /// Same, server side.
    pub(super) spass: usize,
    pub(super) at_statement_start: bool,
    pub(super) last_fatal: bool,
    /// Writes of the open transaction block, invalidated when it ends.
    pub(super) tx_writes: Vec<WriteScope>,
    /// The client's named prepared statements (transaction mode renames them on the server).
    pub(super) statements: ClientStatements,
    /// What becomes of the server's ParseComplete/CloseComplete answers, in order.
    pub(super) fixups: ResponseFixups,
    /// The client's settings, re-applied on each server connection it gets.
    pub(super) settings: ClientSettings,
    /// An ErrorResponse came since the last ReadyForQuery (an implicit transaction failed).
    pub(super) error_since_ready: bool,
    /// The last transaction-ending command tag: Some(true) COMMIT, Some(false) ROLLBACK.
    pub(super) block_end: Option<bool>,
    /// Named statements are renamed on the server (see `renames`).
    pub(super) renaming: bool,
    /// Transactions are placed on the node their first statement names (see `place`).
    pub(super) placing: bool,
    /// Extended-protocol messages kept back until the Bind that places the transaction.
    pub(super) held: Vec<(super::rename::Renamed, BytesMut)>,
    /// A BEGIN answered here, to be run on the server the next statement picks.
    pub(super) begin: Option<String>,
    /// A batch without a Bind runs on a coordinator connection while that BEGIN waits (see
    /// `place`); nothing else from the client is read until its ReadyForQuery.
    pub(super) side_trip: bool,
}

/// What a client frame asks of the walk.
pub(super) enum Walk {
    /// More bytes are needed.
    NeedMore(usize),
    /// The client sent Terminate.
    Terminate,
}

impl<'a> Pooled<'a> {
    #[allow(clippy::too_many_arguments)] // the parts of a session that just logged in, each its own
    pub fn new(
        ctx: &'a Arc<Context>,
        mode: PoolMode,
        pool: Arc<Pool>,
        client: Client,
        hooks: Box<dyn StatementHooks>,
        info: Arc<SessionInfo>,
        cancel: Arc<PooledCancel>,
        startup: &[(String, String)],
    ) -> Pooled<'a> {
        Pooled {
            statements: ctx.prepared.client(),
            fixups: ResponseFixups::new(),
            settings: ClientSettings::new(startup),
            error_since_ready: false,
            block_end: None,
            renaming: mode == PoolMode::Transaction && ctx.config.pool.max_prepared_statements > 0,
            placing: mode == PoolMode::Transaction && (ctx.config.routing.shard_local || ctx.config.routing.spread_reads),
            held: Vec::new(),
            begin: None,
            side_trip: false,
            ctx,
            mode,
            pool,
            client,
            hooks,
            info,
            cancel,
            link: Link::Detached,
            sout: BytesMut::new(),
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
                    // An idle client holds little: thousands of them wait between transactions.
                    let chunk = if matches!(self.link, Link::Detached) { IDLE_CHUNK } else { READ_CHUNK };
                    if self.client.buf.is_empty() && self.client.buf.capacity() > READ_CHUNK && chunk == IDLE_CHUNK {
                        self.client.buf = BytesMut::new();
                    }
                    self.client.buf.reserve(need.saturating_sub(self.client.buf.len()).max(chunk));
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
                    let mut lost_node = None;
                    let from_server = tokio::select! {
                        n = self.client.r.read_buf(&mut self.client.buf) => {
                            if n.map_err(SessionError::ClientIo)? == 0 {
                                return Ok(End::ClientGone);
                            }
                            false
                        }
                        n = server_r.read_buf(server_buf) => match n {
                            Ok(0) if self.last_fatal => return Ok(End::UpstreamClosed),
                            Ok(0) if server.pool().node.is_some() => {
                                lost_node = Some("the node closed the connection".to_string());
                                false
                            }
                            Ok(0) => return Err(SessionError::UpstreamLost(server.info.addr.clone())),
                            Err(e) if server.pool().node.is_some() => {
                                lost_node = Some(e.to_string());
                                false
                            }
                            Err(e) => return Err(SessionError::UpstreamIo(e)),
                            Ok(_) => true,
                        },
                        _ = reached(phase, Phase::Draining), if can_drain => return Ok(End::Drained),
                        _ = reached(&mut closing, Phase::Closing) => return Ok(End::Closed),
                        // Admin console KILL: the server connection is closed at release (not clean).
                        _ = self.info.killed() => return Err(SessionError::Killed),
                    };
                    if let Some(why) = lost_node {
                        self.node_lost(why).await?;
                    } else if from_server {
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

    /// Makes sure a server connection is attached, taking one from the coordinator's pool if
    /// needed. The bytes already queued for the server stay queued.
    pub(super) async fn attach(&mut self) -> Result<(), SessionError> {
        if matches!(self.link, Link::Attached(_)) {
            return Ok(());
        }
        self.attach_to(crate::pool::Target::Coordinator).await
    }

    /// Takes a connection on `target` (or the coordinator, when that node does not answer),
    /// brings it to the client's settings and opens a deferred transaction block on it.
    pub(super) async fn attach_to(&mut self, target: crate::pool::Target) -> Result<(), SessionError> {
        self.info.set_waiting(true);
        let got = self.checkout_on(target).await;
        self.info.set_waiting(false);
        let mut conn = got?;
        conn.pool().served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The client's settings, where this connection's differ.
        let mut sql = String::new();
        if crate::pool::carry::sync_sql(&self.settings, &conn.state.settings, &mut sql) {
            let timeout = self.ctx.config.upstream.connect_timeout;
            match crate::pool::run_hidden(&mut conn, &sql, timeout).await {
                Ok(()) => {
                    conn.state.settings.applied(&self.settings);
                    conn.state.statements.clear_unnamed();
                }
                Err(e) => {
                    let msg = format!("could not re-apply this session's settings on a pooled server connection: {e}");
                    let pool = Arc::clone(conn.pool());
                    self.ctx.pools.checkin(self.ctx, &pool, conn, false).await;
                    return Err(SessionError::Pool(crate::wire::error_response::encode(
                        crate::wire::error_response::Severity::Fatal,
                        "08006",
                        &msg,
                        None,
                    )));
                }
            }
        }
        if let Err(e) = self.begin_on(&mut conn).await {
            let pool = Arc::clone(conn.pool());
            self.ctx.pools.checkin(self.ctx, &pool, conn, false).await;
            return Err(e);
        }
        self.cancel.attach(&conn.key, conn.pool().node.as_ref().map(|n| &n.connector));
        self.link = Link::Attached(conn);
        self.replay_held()
    }

    /// Gives the server connection back when the transaction is over (transaction mode).
    pub(super) async fn maybe_release(&mut self) {
        if self.mode != PoolMode::Transaction || self.pinned {
            return;
        }
        if !(self.pending.is_empty()
            && !self.batch_open
            && self.tx == TxStatus::Idle
            && !self.copy_in
            && self.sout.is_empty()
            && self.fixups.is_empty())
        {
            return;
        }
        self.release().await;
    }

    /// Gives the connection of a finished side trip back: the server is idle, whatever the
    /// client was told (see `place`).
    pub(super) async fn maybe_release_anyway(&mut self) -> bool {
        if !(self.pending.is_empty() && !self.batch_open && self.sout.is_empty() && self.fixups.is_empty() && !self.copy_in) {
            return false;
        }
        self.release().await;
        true
    }

    /// Gives the server connection back, to be reused unless a cancel reached it or it is out
    /// of step.
    async fn release(&mut self) {
        let Link::Attached(conn) = std::mem::replace(&mut self.link, Link::Detached) else { return };
        let touched = self.cancel.detach(self.ctx.config.upstream.connect_timeout).await;
        let reusable = !touched && conn.buf.is_empty() && self.spass == 0;
        let pool = Arc::clone(conn.pool());
        self.ctx.pools.checkin(self.ctx, &pool, conn, reusable).await;
    }

    /// At the end of the session: a connection in a clean state goes back (reset first in
    /// session mode), any other is closed.
    async fn release_at_end(&mut self) {
        let Link::Attached(mut conn) = std::mem::replace(&mut self.link, Link::Detached) else { return };
        let touched = self.cancel.detach(self.ctx.config.upstream.connect_timeout).await;
        let clean = !touched
            && self.fixups.is_empty()
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
                // What the reset cleared (DISCARD ALL: settings, prepared statements).
                conn.state.settings.reset();
                conn.state.statements.clear();
            }
        }
        let pool = Arc::clone(conn.pool());
        self.ctx.pools.checkin(self.ctx, &pool, conn, reusable).await;
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
        if let Err(e) = server.w.write_all(&self.sout).await {
            if server.pool().node.is_some() {
                return self.node_lost(e.to_string()).await;
            }
            return Err(SessionError::UpstreamIo(e));
        }
        self.ctx.metrics.bytes_to_upstream.increment(self.sout.len() as u64);
        self.sout.clear();
        Ok(())
    }

    pub(super) fn push(&mut self, started: Instant, mut note: StatementNote) {
        if self.placing {
            if let Some(n) = &note.notice {
                note.notice = Some(self.served_notice(n));
            }
        }
        let p = Pending::new(started, note);
        if self.pending.is_empty() {
            self.info.set_busy_since(Some(p.started));
        }
        self.pending.push_back(p);
    }
}
