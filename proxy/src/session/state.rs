//! What the two relay directions share. Both run as futures of one task, so the lock is never
//! contended; it exists because the halves are separate futures.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::hooks::{StatementHooks, StatementNote};
use crate::metrics::labels::{ClassLabel, RouteLabel};
use crate::sessions::SessionInfo;
use crate::wire::ready::TxStatus;

/// A Query, Sync or FunctionCall still waiting for its ReadyForQuery.
pub struct Pending {
    pub started: Instant,
    pub notice: Option<Bytes>,
    pub route: RouteLabel,
    pub class: ClassLabel,
    pub shape: Option<u64>,
}

impl Pending {
    pub fn new(started: Instant, note: StatementNote) -> Pending {
        Pending { started, notice: note.notice, route: note.route, class: note.class, shape: note.shape }
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
}

impl State {
    pub fn new(hooks: Box<dyn StatementHooks>, info: std::sync::Arc<SessionInfo>) -> Mutex<State> {
        Mutex::new(State { pending: VecDeque::with_capacity(8), tx: TxStatus::Idle, hooks, draining: false, info, copy_in: false })
    }

    /// A statement starts (its Query, Sync or FunctionCall was forwarded).
    pub fn push(&mut self, p: Pending) {
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
            started = self.pending.pop_back().map(|p| p.started);
        }
        self.info.set_busy_since(self.pending.front().map(|p| p.started));
        started
    }

    /// No statement outstanding and no transaction open: the session can end without loss.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.tx == TxStatus::Idle
    }
}

pub fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere in this session cannot leave the state half-updated in a way that
    // matters more than dropping the client, so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
