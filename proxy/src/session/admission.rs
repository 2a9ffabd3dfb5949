//! Who may take a slot. A connection in login (startup, TLS, authentication) holds a login slot
//! (`limits.max_logins_in_progress`); only once the coordinator accepted it does it take a
//! client slot (`limits.max_client_connections`). So sockets that connect and stall can fill
//! the login slots at worst, never the established clients' ones, and they leave when
//! `limits.startup_timeout` ends their login.

use std::sync::Arc;

use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;

/// A connection arriving when every login slot is taken waits this long for one (bounded by its
/// own login deadline): a burst of legitimate clients, a pool filling up, queues briefly rather
/// than being refused, while slots held by stalled sockets still end in a prompt 53300.
pub const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Waiting connections allowed per login slot: a burst of clients connecting at once (a pool
/// filling up) is many times the logins that run at once; each waits LOGIN_QUEUE_WAIT at most.
const QUEUE_FACTOR: usize = 10;

pub struct Admission {
    logins: Arc<Semaphore>,
    clients: Arc<Semaphore>,
    /// Connections waiting for a login slot (or being refused), at most QUEUE_FACTOR times
    /// as many as there are login slots; past that a connection is closed unanswered, so a
    /// flood cannot pile up tasks and file descriptors.
    queue: Arc<Semaphore>,
    pub max_logins: u32,
    pub max_clients: u32,
}

/// Held from accept until the login ends.
pub struct LoginSlot {
    _permit: OwnedSemaphorePermit,
    /// When the login must be over: `limits.startup_timeout` after the connection was accepted
    /// (time spent waiting for the slot counts).
    pub deadline: Instant,
}
/// Held by an authenticated client for as long as its session lasts.
pub struct ClientSlot {
    _permit: OwnedSemaphorePermit,
}
/// Held by a connection waiting for a login slot, and then while it is refused.
pub struct QueueSlot {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            logins: Arc::new(Semaphore::new(limits.max_logins_in_progress as usize)),
            clients: Arc::new(Semaphore::new(limits.max_client_connections as usize)),
            queue: Arc::new(Semaphore::new(limits.max_logins_in_progress as usize * QUEUE_FACTOR)),
            max_logins: limits.max_logins_in_progress,
            max_clients: limits.max_client_connections,
        }
    }

    pub fn try_login(&self, deadline: Instant) -> Option<LoginSlot> {
        Arc::clone(&self.logins).try_acquire_owned().ok().map(|p| LoginSlot { _permit: p, deadline })
    }

    pub fn try_client(&self) -> Option<ClientSlot> {
        Arc::clone(&self.clients).try_acquire_owned().ok().map(|p| ClientSlot { _permit: p })
    }

    pub fn try_queue(&self) -> Option<QueueSlot> {
        Arc::clone(&self.queue).try_acquire_owned().ok().map(|p| QueueSlot { _permit: p })
    }

    /// A login slot, waiting up to LOGIN_QUEUE_WAIT (and never past the login's `deadline`)
    /// for one to free up.
    pub async fn wait_login(&self, deadline: Instant) -> Option<LoginSlot> {
        let wait = Arc::clone(&self.logins).acquire_owned();
        let until = deadline.min(Instant::now() + LOGIN_QUEUE_WAIT);
        tokio::time::timeout_at(until, wait).await.ok()?.ok().map(|p| LoginSlot { _permit: p, deadline })
    }
}
