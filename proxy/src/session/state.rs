//! What the two relay directions share. Both run as futures of one task, so the lock is never
//! contended; it exists because the halves are separate futures.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use citus_proxy_cache::{FillGuard, PendingWrites, ResponseCollector, WriteScope};

use crate::caching::CachePlan;
use crate::hooks::{StatementHooks, StatementNote};
use crate::metrics::labels::{Class, RouteKind};
use crate::sessions::SessionInfo;
use crate::wire::ready::TxStatus;

/// A Query, Sync or FunctionCall still waiting for its ReadyForQuery.
pub struct Pending {
    pub started: Instant,
    pub notice: Option<Bytes>,
    pub route: RouteKind,
    pub class: Class,
    pub shape: Option<u64>,
    /// Answered from the cache: these bytes, then ReadyForQuery, instead of the coordinator's.
    pub served: Option<Bytes>,
    /// The response is collected to fill the cache.
    pub fill: Option<Filling>,
    /// What the statement makes stale once it commits.
    pub writes: Vec<WriteScope>,
    /// ParseCompletes the client must not see: answers to a Parse the proxy re-sent because
    /// the client's last one was answered from the cache.
    pub hidden_parse_completes: u8,
    /// Can change neither the transaction status nor any data (a Sync closing only Close
    /// messages, or an answer from the cache): a cached answer may queue behind it.
    pub neutral: bool,
}

/// A cache miss this session leads: its response is collected and stored.
pub struct Filling {
    pub guard: FillGuard,
    pub collector: ResponseCollector,
    pub ttl: std::time::Duration,
}

impl Pending {
    pub fn new(started: Instant, note: StatementNote) -> Pending {
        let writes = match note.cache {
            CachePlan::Write(w) => w,
            _ => Vec::new(),
        };
        Pending {
            started,
            notice: note.notice,
            route: note.route,
            class: note.class,
            shape: note.shape,
            served: None,
            fill: None,
            writes,
            hidden_parse_completes: 0,
            neutral: false,
        }
    }
}

pub struct State {
    pub pending: VecDeque<Pending>,
    pub tx: TxStatus,
    pub hooks: Box<dyn StatementHooks>,
    /// Set once the proxy is draining: the session ends at its next idle point.
    pub draining: bool,
    pub info: std::sync::Arc<SessionInfo>,
    /// The coordinator sent CopyInResponse and the client has not yet sent CopyDone/CopyFail.
    pub copy_in: bool,
    /// Writes of the open transaction block, invalidated when it ends.
    pub tx_writes: PendingWrites,
    /// A write's invalidation is being published; nothing may be served from the cache until
    /// it is (the write's ReadyForQuery has not reached the client yet).
    pub invalidating: bool,
    /// The client's last unnamed Parse was answered from the cache, so the coordinator never
    /// saw it: re-sent before anything that uses the unnamed statement without parsing it.
    pub unsent_unnamed_parse: Option<Bytes>,
    /// Writes of entries dropped by `discard_newest` (a COPY's Bind…Sync, whose Sync PostgreSQL
    /// ignored), carried to the statement whose ReadyForQuery will report them.
    carried_writes: Vec<WriteScope>,
}

impl State {
    pub fn new(hooks: Box<dyn StatementHooks>, info: std::sync::Arc<SessionInfo>) -> Mutex<State> {
        Mutex::new(State {
            pending: VecDeque::with_capacity(8),
            tx: TxStatus::Idle,
            hooks,
            draining: false,
            info,
            copy_in: false,
            tx_writes: PendingWrites::default(),
            invalidating: false,
            unsent_unnamed_parse: None,
            carried_writes: Vec::new(),
        })
    }

    /// A statement starts (its Query, Sync or FunctionCall was forwarded).
    pub fn push(&mut self, mut p: Pending) {
        if !self.carried_writes.is_empty() {
            p.writes.append(&mut self.carried_writes);
        }
        if self.pending.is_empty() {
            self.info.set_busy_since(Some(p.started));
        }
        self.pending.push_back(p);
    }

    /// The oldest statement finished with ReadyForQuery.
    pub fn pop(&mut self, status: TxStatus) -> Option<Pending> {
        let p = self.pending.pop_front();
        self.info.set_busy_since(self.pending.front().map(|n| n.started));
        self.info.set_tx(status);
        self.info.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tx = status;
        p
    }

    /// Forgets the newest `n` entries (Syncs PostgreSQL ignored in copy-in mode); returns the
    /// start of the oldest one forgotten.
    pub fn discard_newest(&mut self, n: usize) -> Option<Instant> {
        let mut started = None;
        for _ in 0..n.min(self.pending.len()) {
            if let Some(mut p) = self.pending.pop_back() {
                started = Some(p.started);
                self.carried_writes.append(&mut p.writes);
            }
        }
        self.info.set_busy_since(self.pending.front().map(|p| p.started));
        started
    }

    /// Every write whose outcome the proxy has not seen (for a session that ends now: they may
    /// have committed).
    pub fn take_unsettled_writes(&mut self) -> Vec<WriteScope> {
        let mut all = self.tx_writes.take();
        all.append(&mut self.carried_writes);
        for p in self.pending.iter_mut() {
            all.append(&mut p.writes);
        }
        all
    }

    /// No statement outstanding and no transaction open: the session can end without loss.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.tx == TxStatus::Idle
    }

    /// Whether a statement arriving now may be answered from the cache: no transaction block,
    /// nothing outstanding that could open one or write (the answer queues behind the rest, so
    /// it never overtakes them), no COPY, no invalidation still being published.
    pub fn may_serve_cached(&self) -> bool {
        self.tx == TxStatus::Idle && self.pending.iter().all(|p| p.neutral) && !self.copy_in && !self.invalidating
    }

    /// The front statement is answered from the cache.
    pub fn front_is_served(&self) -> bool {
        self.pending.front().is_some_and(|p| p.served.is_some())
    }
}

pub fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere in this session cannot leave the state half-updated in a way that
    // matters more than dropping the client, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
