//! The in-process tier: a DashMap bounded in bytes, with CLOCK eviction (an approximate LRU: a hit
//! sets a bit, the sweeping hand clears it once before evicting) and TTL expiry.
//!
//! Lookups only touch the map (sharded locks) and one atomic bit. Inserts and evictions are
//! serialised by one mutex: that is what keeps the byte bound exact under concurrent stores,
//! and stores are far rarer than lookups.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use dashmap::DashMap;

use crate::entry::Entry;
use crate::key::Key;

#[derive(Debug)]
struct Slot {
    entry: Entry,
    expires: Instant,
    /// Distinguishes this insertion from an earlier one of the same key in the clock ring.
    seq: u64,
    weight: usize,
    referenced: AtomicBool,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Inserted {
    pub stored: bool,
    pub evicted: u64,
    pub expired: u64,
}

#[derive(Debug)]
pub(crate) struct MemoryTier {
    map: DashMap<Key, Slot>,
    /// The clock ring of (key, seq); may hold stale pairs, skipped when met.
    ring: Mutex<VecDeque<(Key, u64)>>,
    bytes: AtomicUsize,
    max_bytes: usize,
    seq: AtomicU64,
}

impl MemoryTier {
    pub fn new(max_bytes: usize) -> Self {
        MemoryTier { map: DashMap::new(), ring: Mutex::new(VecDeque::new()), bytes: AtomicUsize::new(0), max_bytes, seq: AtomicU64::new(0) }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// A live entry; an expired one is removed (the bool says so, for the counters).
    pub fn get(&self, key: &Key) -> (Option<Entry>, bool) {
        let now = Instant::now();
        let expired_seq = match self.map.get(key) {
            None => return (None, false),
            Some(slot) if slot.expires > now => {
                slot.referenced.store(true, Ordering::Relaxed);
                return (Some(slot.entry.clone()), false);
            }
            Some(slot) => slot.seq,
        };
        // The map guard is released above: removing while holding it would deadlock its shard.
        (None, self.remove_seq(key, expired_seq))
    }

    /// Stores `entry` until `expires`, evicting as needed to stay within the bound.
    pub fn insert(&self, key: Key, entry: Entry, expires: Instant) -> Inserted {
        let weight = entry.weight();
        let mut out = Inserted::default();
        if !self.enabled() || weight > self.max_bytes || expires <= Instant::now() {
            return out;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = self.map.remove(&key) {
            self.bytes.fetch_sub(old.weight, Ordering::AcqRel);
        }
        while self.bytes.load(Ordering::Acquire) + weight > self.max_bytes {
            match self.evict_one(&mut ring) {
                Some(true) => out.expired += 1,
                Some(false) => out.evicted += 1,
                None => break,
            }
        }
        if self.bytes.load(Ordering::Acquire) + weight > self.max_bytes {
            // Only possible if the ring lost track of entries; refuse rather than overflow.
            return out;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(weight, Ordering::AcqRel);
        self.map.insert(key, Slot { entry, expires, seq, weight, referenced: AtomicBool::new(false) });
        ring.push_back((key, seq));
        if ring.len() > 2 * self.map.len() + 1024 {
            // Stale pairs pile up when entries leave by expiry-on-lookup or replacement.
            ring.retain(|(k, s)| self.map.get(k).is_some_and(|slot| slot.seq == *s));
        }
        out.stored = true;
        out
    }

    /// Advances the clock hand until one entry is removed: Some(true) if it had expired,
    /// Some(false) if evicted for space, None if the ring is empty.
    fn evict_one(&self, ring: &mut VecDeque<(Key, u64)>) -> Option<bool> {
        let now = Instant::now();
        while let Some((key, seq)) = ring.pop_front() {
            let state = self
                .map
                .get(&key)
                .filter(|slot| slot.seq == seq)
                .map(|slot| (slot.expires <= now, slot.referenced.swap(false, Ordering::Relaxed)));
            match state {
                None => continue,
                Some((false, true)) => ring.push_back((key, seq)),
                Some((expired, _)) => {
                    if self.remove_seq(&key, seq) {
                        return Some(expired);
                    }
                }
            }
        }
        None
    }

    fn remove_seq(&self, key: &Key, seq: u64) -> bool {
        match self.map.remove_if(key, |_, slot| slot.seq == seq) {
            Some((_, slot)) => {
                self.bytes.fetch_sub(slot.weight, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    pub fn clear(&self) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.clear();
        self.map.retain(|_, slot| {
            self.bytes.fetch_sub(slot.weight, Ordering::AcqRel);
            false
        });
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::generations::Snapshot;
    use crate::key::KeyParts;

    fn key(i: u64) -> Key {
        let parts = KeyParts::builder(&Default::default()).statement(&format!("q{i}")).finish();
        Key::derive(&parts, &Snapshot::new(1, vec![]))
    }

    fn entry(size: usize) -> Entry {
        Entry::new(Bytes::from(vec![b'x'; size]), Duration::from_secs(60))
    }

    #[test]
    fn bound_and_clock() {
        let per = 100 + crate::entry::ENTRY_OVERHEAD;
        let m = MemoryTier::new(per * 10);
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..10 {
            assert!(m.insert(key(i), entry(100), later).stored);
        }
        // Touch 0..5 so the hand spares them.
        for i in 0..5 {
            assert!(m.get(&key(i)).0.is_some());
        }
        let out = m.insert(key(100), entry(100), later);
        assert!(out.stored);
        assert_eq!(out.evicted, 1);
        assert!(m.bytes() <= per * 10);
        assert!(m.get(&key(5)).0.is_none(), "the first unreferenced entry goes");
        for i in 0..5 {
            assert!(m.get(&key(i)).0.is_some(), "referenced entry {i} survives");
        }
        m.clear();
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }
}
