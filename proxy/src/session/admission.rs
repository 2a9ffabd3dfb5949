//! Who may take a slot. A connection in login (startup, TLS, authentication) holds a login slot
//! (`limits.max_logins_in_progress`); only once the coordinator accepted it does it take a
//! client slot (`limits.max_client_connections`). So sockets that connect and stall can fill
//! the login slots at worst, never the established clients' ones, and they leave when
//! `limits.startup_timeout` ends their login.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;

/// A refused connection is answered (53300 once its startup packet is read) by at most this
/// many tasks at once; past that it is closed unanswered, so a flood cannot pile up tasks.
const MAX_REFUSING: usize = 64;

pub struct Admission {
    logins: Arc<Semaphore>,
    clients: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    pub max_logins: u32,
    pub max_clients: u32,
}

/// Held from accept until the login ends.
pub struct LoginSlot(#[allow(dead_code)] OwnedSemaphorePermit);
/// Held by an authenticated client for as long as its session lasts.
pub struct ClientSlot(#[allow(dead_code)] OwnedSemaphorePermit);
/// Held by a task answering a refused connection.
pub struct RefusalSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            logins: Arc::new(Semaphore::new(limits.max_logins_in_progress as usize)),
            clients: Arc::new(Semaphore::new(limits.max_client_connections as usize)),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            max_logins: limits.max_logins_in_progress,
            max_clients: limits.max_client_connections,
        }
    }

    pub fn try_login(&self) -> Option<LoginSlot> {
        Arc::clone(&self.logins).try_acquire_owned().ok().map(LoginSlot)
    }

    pub fn try_client(&self) -> Option<ClientSlot> {
        Arc::clone(&self.clients).try_acquire_owned().ok().map(ClientSlot)
    }

    pub fn try_refuse(&self) -> Option<RefusalSlot> {
        Arc::clone(&self.refusing).try_acquire_owned().ok().map(RefusalSlot)
    }
}
