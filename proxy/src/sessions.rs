//! Live sessions, for the admin console (SHOW CLIENTS / SERVERS) and the
//! oldest-running-statement gauge. Each session updates its own atomics; readers scan.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dashmap::DashMap;

use crate::wire::ready::TxStatus;

pub struct SessionInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub user: String,
    pub database: String,
    pub tls: bool,
    /// `application_name` from the startup packet (a later SET is not seen).
    pub application_name: String,
    pub connected_at: SystemTime,
    /// `I`, `T` or `E` as last reported by ReadyForQuery.
    tx: AtomicU8,
    /// Start of the oldest statement in flight, in µs since the registry's epoch + 1; 0 = none.
    busy_since: AtomicU64,
    pub statements: AtomicU64,
    epoch: Instant,
    /// µs since the registry's epoch + 1 since when it waits for a pooled server connection; 0 = not waiting.
    waiting_since: AtomicU64,
    /// Bound to one pooled server connection for good (transaction mode; see session::pooled::pin).
    pinned: std::sync::atomic::AtomicBool,
    /// Set by the console's KILL; the session loops watch `kill` and end with SQLSTATE 57P01.
    killed: std::sync::atomic::AtomicBool,
    kill: tokio::sync::Notify,
}

impl SessionInfo {
    /// Asks the session to end (KILL on the admin console).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_waiters();
    }
    /// Resolves once `kill` was called (at once if it already was). Cancel-safe.
    pub async fn killed(&self) {
        loop {
            let notified = self.kill.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a kill between the two is not missed.
            notified.as_mut().enable();
            if self.killed.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
    pub fn set_tx(&self, s: TxStatus) {
        self.tx.store(s.byte(), Ordering::Relaxed);
    }
    pub fn tx(&self) -> char {
        self.tx.load(Ordering::Relaxed) as char
    }
    /// Marks the oldest statement in flight as started at `at` (None = nothing in flight).
    pub fn set_busy_since(&self, at: Option<Instant>) {
        let v = at.map(|t| t.saturating_duration_since(self.epoch).as_micros() as u64 + 1).unwrap_or(0);
        self.busy_since.store(v, Ordering::Relaxed);
    }
    pub fn set_waiting(&self, waiting: bool) {
        let v = if waiting { self.epoch.elapsed().as_micros() as u64 + 1 } else { 0 };
        self.waiting_since.store(v, Ordering::Relaxed);
    }
    /// How long it has been waiting for a pooled server connection.
    pub fn waiting_for(&self) -> Option<std::time::Duration> {
        match self.waiting_since.load(Ordering::Relaxed) {
            0 => None,
            v => Some(self.epoch.elapsed().saturating_sub(std::time::Duration::from_micros(v - 1))),
        }
    }
    pub fn set_pinned(&self) {
        self.pinned.store(true, Ordering::Relaxed);
    }
    pub fn pinned(&self) -> bool {
        self.pinned.load(Ordering::Relaxed)
    }
    /// How long the oldest statement in flight has been running.
    pub fn busy_for(&self) -> Option<std::time::Duration> {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => None,
            v => Some(self.epoch.elapsed().saturating_sub(std::time::Duration::from_micros(v - 1))),
        }
    }
}

pub struct SessionRegistry {
    map: DashMap<u64, Arc<SessionInfo>>,
    next: AtomicU64,
    epoch: Instant,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        SessionRegistry { map: DashMap::new(), next: AtomicU64::new(1), epoch: Instant::now() }
    }
}

/// Removes the session from the registry when dropped.
pub struct Listed {
    registry: Arc<SessionRegistry>,
    pub info: Arc<SessionInfo>,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.registry.map.remove(&self.info.id);
    }
}

impl SessionRegistry {
    pub fn add(self: &Arc<Self>, peer: SocketAddr, user: &str, database: &str, tls: bool, application_name: &str) -> Listed {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(SessionInfo {
            id,
            peer,
            user: user.to_string(),
            database: database.to_string(),
            tls,
            application_name: application_name.to_string(),
            connected_at: SystemTime::now(),
            tx: AtomicU8::new(b'I'),
            busy_since: AtomicU64::new(0),
            statements: AtomicU64::new(0),
            epoch: self.epoch,
            waiting_since: AtomicU64::new(0),
            pinned: std::sync::atomic::AtomicBool::new(false),
            killed: std::sync::atomic::AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
        });
        self.map.insert(id, Arc::clone(&info));
        Listed { registry: Arc::clone(self), info }
    }

    pub fn snapshot(&self) -> Vec<Arc<SessionInfo>> {
        let mut v: Vec<_> = self.map.iter().map(|e| Arc::clone(e.value())).collect();
        v.sort_by_key(|s| s.id);
        v
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The longest-running statement in flight across all sessions.
    pub fn oldest_statement(&self) -> Option<std::time::Duration> {
        self.map.iter().filter_map(|e| e.value().busy_for()).max()
    }
}
