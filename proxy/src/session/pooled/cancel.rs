//! Where a pooled client's cancel goes: the server connection serving it right now, and only
//! while it does. A cancel being delivered holds the connection: the session gives it back only
//! after delivery, and then closes it instead of reusing it (the backend may still act on the
//! signal), so a cancel never reaches another client's statement.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::net::upstream::Connector;
use crate::wire::backend_key::CancelKey;

#[derive(Debug, Default)]
struct Slot {
    server: Option<Arc<CancelKey>>,
    /// The node that server connection is on; None: the coordinator.
    via: Option<Arc<Connector>>,
    in_flight: u32,
    touched: bool,
}

#[derive(Debug, Default)]
pub struct PooledCancel {
    slot: Mutex<Slot>,
    delivered: tokio::sync::Notify,
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cancel in delivery; dropping it ends the hold.
pub struct Held {
    target: Arc<PooledCancel>,
    key: Arc<CancelKey>,
    via: Option<Arc<Connector>>,
}

impl Held {
    pub fn key(&self) -> &CancelKey {
        &self.key
    }
    /// Where to send it: a node's connector, or None for the coordinator.
    pub fn via(&self) -> Option<&Connector> {
        self.via.as_deref()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.target.slot).in_flight -= 1;
        self.target.delivered.notify_waiters();
    }
}

impl PooledCancel {
    /// The client now runs on the server connection with `key`.
    pub fn attach(&self, key: &Arc<CancelKey>, via: Option<&Arc<Connector>>) {
        let mut s = lock(&self.slot);
        s.server = Some(Arc::clone(key));
        s.via = via.cloned();
        s.touched = false;
    }

    /// The client is about to give its server connection back: waits for cancels in delivery
    /// (bounded) and says whether one was sent to it during this checkout (then the connection
    /// must not be reused).
    pub async fn detach(&self, bound: Duration) -> bool {
        // No new cancel can reach the connection from here on; only those already on their way
        // are waited for (a stream of cancels must not hold the connection).
        lock(&self.slot).server = None;
        {
            // The common case, no cancel at all, decided without a clock or a waiter.
            let mut s = lock(&self.slot);
            if s.in_flight == 0 {
                return std::mem::take(&mut s.touched);
            }
        }
        let until = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.delivered.notified();
            {
                let mut s = lock(&self.slot);
                if s.in_flight == 0 || tokio::time::Instant::now() >= until {
                    return std::mem::take(&mut s.touched);
                }
            }
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// A cancel arrived: the key of the server connection serving the client, held until the
    /// returned guard drops; None when the client has none (nothing is running).
    pub fn begin(self: &Arc<Self>) -> Option<Held> {
        let mut s = lock(&self.slot);
        let key = s.server.clone()?;
        s.in_flight += 1;
        s.touched = true;
        let via = s.via.clone();
        Some(Held { target: Arc::clone(self), key, via })
    }
}
