//! The proxy's side of single-flight: a leader fills the key, followers wait for it.

use std::time::Duration;

use crate::entry::Entry;
use crate::facade::Cache;
use crate::key::Key;
use crate::policy::BypassReason;
use crate::single_flight::{Follower, Leader};

/// The outcome of [`Cache::begin_fill`].
pub enum Fill {
    /// Run the statement upstream, relay and collect the response, then `complete` (or
    /// `abandon`; dropping the guard also releases the followers).
    Leader(FillGuard),
    /// Another client is running the same statement: `wait` for its entry; on None go upstream.
    Follower(FillWaiter),
}

pub struct FillGuard {
    cache: Cache,
    key: Key,
    leader: Option<Leader<Key, Entry>>,
}

impl FillGuard {
    pub(crate) fn new(cache: Cache, key: Key, leader: Leader<Key, Entry>) -> Self {
        FillGuard { cache, key, leader: Some(leader) }
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Stores the response (unless the policy refuses it: error, too large, unreplayable) and
    /// hands it to the followers. The in-process copy is made before the followers wake, the
    /// Redis copy after (bounded by the Redis timeout).
    pub async fn complete(mut self, entry: Entry) -> Result<(), BypassReason> {
        let inner = &self.cache.inner;
        let leader = self.leader.take();
        inner.check(&entry)?;
        inner.store_memory(&self.key, &entry);
        if let Some(leader) = leader {
            leader.finish(Some(entry.clone()));
        }
        inner.store_redis(&self.key, &entry).await;
        Ok(())
    }

    /// The response will not be cached (counted under `reason`); followers go upstream.
    pub fn abandon(mut self, reason: BypassReason) {
        self.cache.inner.counters.bypass(reason);
        if let Some(leader) = self.leader.take() {
            leader.finish(None);
        }
    }
}

pub struct FillWaiter {
    follower: Follower<Entry>,
    limit: Duration,
}

impl FillWaiter {
    pub(crate) fn new(follower: Follower<Entry>, limit: Duration) -> Self {
        FillWaiter { follower, limit }
    }

    /// The leader's entry, or None (it failed, bypassed, or exceeded `fill_timeout`).
    pub async fn wait(self) -> Option<Entry> {
        self.follower.wait(self.limit).await
    }
}
