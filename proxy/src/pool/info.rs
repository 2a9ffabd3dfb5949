//! What the admin console and the metrics see of one server connection: atomics its owner
//! updates, read by SHOW SERVERS without locking anything.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Instant, SystemTime};

use super::key::PoolKey;

/// Where a server connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerState {
    /// Logging in.
    Login = 0,
    /// In the pool, ready for a client.
    Idle = 1,
    /// Serving a client.
    Active = 2,
    /// Being reset or checked before reuse.
    Used = 3,
}

impl ServerState {
    fn from_u8(v: u8) -> ServerState {
        match v {
            0 => ServerState::Login,
            1 => ServerState::Idle,
            2 => ServerState::Active,
            _ => ServerState::Used,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Login => "login",
            ServerState::Idle => "idle",
            ServerState::Active => "active",
            ServerState::Used => "used",
        }
    }
}

pub struct ServerInfo {
    pub id: u64,
    pub key: PoolKey,
    pub addr: String,
    pub connected_at: SystemTime,
    pub opened: Instant,
    backend_pid: std::sync::atomic::AtomicI32,
    state: AtomicU8,
    /// The client session it serves (0 = none).
    client: AtomicU64,
    /// µs since `opened` of the last state change.
    changed_us: AtomicU64,
    pub checkouts: AtomicU64,
}

impl ServerInfo {
    pub fn new(id: u64, key: PoolKey, addr: String) -> ServerInfo {
        ServerInfo {
            id,
            key,
            addr,
            connected_at: SystemTime::now(),
            opened: Instant::now(),
            backend_pid: std::sync::atomic::AtomicI32::new(0),
            state: AtomicU8::new(ServerState::Login as u8),
            client: AtomicU64::new(0),
            changed_us: AtomicU64::new(0),
            checkouts: AtomicU64::new(0),
        }
    }

    pub fn set_pid(&self, pid: i32) {
        self.backend_pid.store(pid, Ordering::Relaxed);
    }

    pub fn pid(&self) -> i32 {
        self.backend_pid.load(Ordering::Relaxed)
    }

    pub fn set(&self, state: ServerState, client: u64) {
        self.set_at(state, client, Instant::now());
    }

    /// As `set`, with the time already read.
    pub fn set_at(&self, state: ServerState, client: u64, now: Instant) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.client.store(client, Ordering::Relaxed);
        self.changed_us.store(now.saturating_duration_since(self.opened).as_micros() as u64, Ordering::Relaxed);
    }

    pub fn state(&self) -> ServerState {
        ServerState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn client(&self) -> Option<u64> {
        Some(self.client.load(Ordering::Relaxed)).filter(|c| *c != 0)
    }

    /// How long it has been in its current state.
    pub fn in_state_for(&self) -> std::time::Duration {
        let at = std::time::Duration::from_micros(self.changed_us.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(at)
    }
}
