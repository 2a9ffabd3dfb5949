//! The cache's counters, kept as atomics and read as one [`CacheStats`]: the proxy copies them
//! into its Prometheus registry before each scrape (`proxy/src/metrics/cache.rs`) and shows them
//! in `SHOW CACHE`. That is the only way out; the crate records into no global recorder.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::BypassReason;

/// A cache tier, the `tier` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Redis,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Redis => "redis",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits_memory: AtomicU64,
    pub hits_redis: AtomicU64,
    pub misses: AtomicU64,
    pub stores_memory: AtomicU64,
    pub stores_redis: AtomicU64,
    pub evictions_memory: AtomicU64,
    pub expirations_memory: AtomicU64,
    pub invalidations: AtomicU64,
    pub invalidation_failures: AtomicU64,
    pub redis_resets: AtomicU64,
    bypass: [AtomicU64; BypassReason::ALL.len()],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn hit(&self, tier: Tier) {
        add(if tier == Tier::Memory { &self.hits_memory } else { &self.hits_redis }, 1);
    }

    pub fn miss(&self) {
        add(&self.misses, 1);
    }

    pub fn store(&self, tier: Tier) {
        add(if tier == Tier::Memory { &self.stores_memory } else { &self.stores_redis }, 1);
    }

    /// Capacity evictions and TTL expirations, counted apart.
    pub fn evicted(&self, evicted: u64, expired: u64) {
        add(&self.expirations_memory, expired);
        add(&self.evictions_memory, evicted);
    }

    pub fn bypass(&self, reason: BypassReason) {
        if let Some(counter) = BypassReason::ALL.iter().position(|r| *r == reason).and_then(|i| self.bypass.get(i)) {
            add(counter, 1);
        }
    }

    pub fn bypass_counts(&self) -> Vec<(&'static str, u64)> {
        BypassReason::ALL.iter().zip(&self.bypass).map(|(r, c)| (r.as_str(), c.load(Ordering::Relaxed))).collect()
    }
}

pub(crate) fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A snapshot for an admin `SHOW CACHE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_entries: usize,
    /// Charged bytes (entry bytes plus a fixed per-entry overhead).
    pub memory_bytes: usize,
    pub memory_max_bytes: usize,
    /// The Redis breaker (`closed`, `open`, `half_open`); None without Redis.
    pub redis_breaker: Option<&'static str>,
    /// Invalidations not yet published to Redis (while > 0 nothing is served from the cache).
    pub pending_invalidations: usize,
    pub fills_in_flight: usize,
    pub hits_memory: u64,
    pub hits_redis: u64,
    pub misses: u64,
    pub stores_memory: u64,
    pub stores_redis: u64,
    pub evictions_memory: u64,
    pub expirations_memory: u64,
    pub invalidations: u64,
    pub invalidation_failures: u64,
    /// Times this instance found Redis's generations gone back in time or lost (a restart from
    /// an older snapshot, a failover to a replica that lagged, a lost hash) and installed the new
    /// epoch that drops everything cached before (instances noticing together install one).
    pub redis_resets: u64,
    /// (reason label, count) for every bypass reason.
    pub bypass: Vec<(&'static str, u64)>,
}
