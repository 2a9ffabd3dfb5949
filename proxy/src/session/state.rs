//! What the two relay directions share. Both run as futures of one task, so the lock is never
//! contended; it exists because the halves are separate futures.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::hooks::StatementHooks;
use crate::wire::ready::TxStatus;

/// A Query, Sync or FunctionCall still waiting for its ReadyForQuery.
pub struct Pending {
    pub started: Instant,
    pub notice: Option<Bytes>,
}

pub struct State {
    pub pending: VecDeque<Pending>,
    pub tx: TxStatus,
    pub hooks: Box<dyn StatementHooks>,
    /// Set once the proxy is draining: the session ends at its next idle point.
    pub draining: bool,
}

impl State {
    pub fn new(hooks: Box<dyn StatementHooks>) -> Mutex<State> {
        Mutex::new(State { pending: VecDeque::with_capacity(8), tx: TxStatus::Idle, hooks, draining: false })
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
