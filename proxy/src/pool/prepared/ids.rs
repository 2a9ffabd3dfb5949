//! The proxy-wide statement ids: one per distinct statement content (the Parse body after the
//! name: query text, NUL, parameter type count and OIDs), so a server connection that prepared a
//! statement for one client serves every client that prepares the same text.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;

use super::SERVER_NAME_PREFIX;

/// One statement content, shared by every client that prepared it.
#[derive(Debug, PartialEq, Eq)]
pub struct Prepared {
    pub id: u64,
    /// `citus_proxy_<id>`, without the NUL.
    pub server_name: Bytes,
    /// The Parse body after the statement name: `query\0`, `n: u16`, `n` type OIDs.
    pub parse_rest: Bytes,
}

/// Interns statement contents. Ids are never reused, so a server connection may keep an id whose
/// entry was swept here: the same text prepared again gets a new id and a new server name.
#[derive(Debug)]
pub struct StatementIds {
    by_content: DashMap<Bytes, Arc<Prepared>, ahash::RandomState>,
    next_id: AtomicU64,
    next_client: AtomicU64,
    /// Entries no client holds are dropped when the map reaches this size.
    sweep_at: AtomicUsize,
    min_sweep: usize,
}

impl Default for StatementIds {
    fn default() -> Self {
        StatementIds::new(10_000)
    }
}

impl StatementIds {
    /// `min_sweep`: below this many contents nothing is ever swept.
    pub fn new(min_sweep: usize) -> StatementIds {
        StatementIds {
            by_content: DashMap::default(),
            next_id: AtomicU64::new(1),
            next_client: AtomicU64::new(1),
            sweep_at: AtomicUsize::new(min_sweep.max(1)),
            min_sweep: min_sweep.max(1),
        }
    }

    /// The statement for this content; allocates only for a content not seen before.
    pub fn intern(&self, parse_rest: &[u8]) -> Arc<Prepared> {
        if let Some(p) = self.by_content.get(parse_rest) {
            return Arc::clone(p.value());
        }
        self.maybe_sweep();
        let key = Bytes::copy_from_slice(parse_rest);
        let p = self.by_content.entry(key.clone()).or_insert_with(|| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut name = Vec::with_capacity(SERVER_NAME_PREFIX.len() + 20);
            name.extend_from_slice(SERVER_NAME_PREFIX);
            name.extend_from_slice(id.to_string().as_bytes());
            Arc::new(Prepared { id, server_name: Bytes::from(name), parse_rest: key })
        });
        Arc::clone(p.value())
    }

    /// A key for a new client's unnamed statement bookkeeping (see `ServerStatements`).
    pub(super) fn client_key(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// Distinct contents currently interned.
    pub fn len(&self) -> usize {
        self.by_content.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }

    /// Drops the contents no client holds any more, once the map has grown to the threshold;
    /// the threshold then doubles over what is left, so a map full of live statements is not
    /// swept on every new one.
    fn maybe_sweep(&self) {
        let at = self.sweep_at.load(Ordering::Relaxed);
        if self.by_content.len() < at {
            return;
        }
        // The map's own Arc is the only one left when no client has the statement.
        self.by_content.retain(|_, p| Arc::strong_count(p) > 1);
        let next = (self.by_content.len() * 2).max(self.min_sweep);
        self.sweep_at.store(next, Ordering::Relaxed);
    }
}
