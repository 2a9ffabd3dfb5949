//! `Cache`: the one type the proxy talks to. It ties the policy, the two tiers, the generations
//! and single-flight together, and turns every Redis failure into a miss or a bypass.
//!
//! The read-your-writes argument (with Redis): a write's `invalidate` returns only after its
//! HINCRBYs landed in Redis, and the proxy relays the write's ReadyForQuery only after that.
//! Every lookup reads the current generations from Redis and uses an entry only if it was stored
//! under exactly those generations; an entry's generations were read before its upstream query
//! started. So an entry served after a write's ReadyForQuery was produced by a query that started
//! after the write's HINCRBY, hence after its commit. The local view only guesses the key (one
//! round trip in the common case: generations and entry fetched together); it is never trusted.
//! When Redis cannot be asked, nothing is served from any tier (fail open to the coordinator).
//!
//! The argument needs Redis never to go back in time, which a restart from an older snapshot, a
//! failover to a replica that lagged or a reload of an old RDB all do: the counters return to
//! values this instance already used (its in-process entries under them predate later writes),
//! and entries stored back then come back with the data. So every answer's `seq` is checked
//! against the highest one seen before the request (`generations.rs`); a lower one, or a hash
//! without an epoch, resets: the in-process tier is emptied and a new epoch installed in Redis
//! (one atomic step, so instances that notice together agree on one), which makes every key
//! derived before unreachable in both tiers. Nothing is served from the answer that noticed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::CacheConfig;
use crate::entry::Entry;
use crate::error::CacheError;
use crate::facts::{SessionView, StatementFacts, WriteScope};
use crate::fill::{Fill, FillGuard, FillWaiter};
use crate::generations::{new_epoch, read_fields, write_fields, Event, LocalView, Observed, Reading, Snapshot};
use crate::key::{Key, KeyParts};
use crate::memory::MemoryTier;
use crate::pending::{Pending, Start};
use crate::policy::{BypassReason, Decision, Policy};
use crate::redis_tier::{RedisTier, Replace};
use crate::single_flight::{Flight, SingleFlight};
use crate::stats::{load, CacheStats, Counters, Tier};
use crate::subscriber;

/// The outcome of [`Cache::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Relay `entry.bytes()` then the session's own ReadyForQuery.
    Hit { entry: Entry, tier: Tier },
    /// Not cached under the current generations: call [`Cache::begin_fill`] with this key.
    Miss(Key),
    /// Go upstream and do not store.
    Bypass(BypassReason),
}

/// Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    policy: Policy,
    memory: MemoryTier,
    pub(crate) redis: Option<RedisTier>,
    view: LocalView,
    pub(crate) flights: SingleFlight<Key, Entry>,
    pending: Mutex<Pending>,
    pub(crate) counters: Counters,
    pub(crate) fill_timeout: Duration,
    /// Writes wait a little longer than reads for their HINCRBY: a lost invalidation costs more
    /// than a few milliseconds on a write.
    invalidate_timeout: Duration,
    /// How long a write may wait for its invalidation to reach a slow Redis.
    invalidation_budget: Duration,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

impl Cache {
    /// Builds the cache. With `redis_url` set this must run inside a tokio runtime (it spawns the
    /// connection, the pub/sub listener and a maintenance task); Redis being down is not an
    /// error, only a malformed configuration is.
    pub fn new(config: &CacheConfig, policy: Policy) -> Result<Cache, CacheError> {
        config.validate()?;
        let redis = match config.redis_url {
            Some(_) if tokio::runtime::Handle::try_current().is_err() => {
                return Err(CacheError::Config("a cache with Redis must be created inside a tokio runtime".into()));
            }
            Some(_) => Some(RedisTier::new(config)?),
            None => None,
        };
        let inner = Arc::new(Inner {
            policy,
            memory: MemoryTier::new(usize::try_from(config.memory_max_bytes).unwrap_or(usize::MAX)),
            redis,
            view: LocalView::new(new_epoch()),
            flights: SingleFlight::default(),
            pending: Mutex::new(Pending::default()),
            counters: Counters::default(),
            fill_timeout: config.fill_timeout,
            invalidate_timeout: config.redis_timeout.saturating_mul(4).max(Duration::from_millis(20)),
            invalidation_budget: config.invalidation_timeout,
            tasks: Mutex::new(Vec::new()),
        });
        if let Some(redis) = &inner.redis {
            let weak = Arc::downgrade(&inner);
            let listener = subscriber::spawn(redis.nodes().to_vec(), redis.channel(), config.breaker_cooldown, move |ev| {
                let Some(inner) = weak.upgrade() else { return false };
                if let Some(ev) = ev {
                    inner.apply(ev);
                }
                true
            });
            let upkeep = tokio::spawn(crate::upkeep::run(Arc::downgrade(&inner), config.breaker_cooldown.max(Duration::from_millis(100))));
            inner.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend([listener, upkeep]);
        }
        Ok(Cache { inner })
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// [`Policy::decide`], counting bypasses in `citus_proxy_cache_bypass_total`.
    pub fn decide(&self, facts: &StatementFacts, session: &SessionView) -> Decision {
        let d = self.inner.policy.decide(facts, session);
        if let Decision::Bypass(reason) = d {
            self.inner.counters.bypass(reason);
        }
        d
    }

    /// Counts a bypass the proxy decided itself (e.g. `TooLarge` from a `ResponseCollector`).
    pub fn record_bypass(&self, reason: BypassReason) {
        self.inner.counters.bypass(reason);
    }

    /// Looks a statement up under the current generations of what it reads. Call only after
    /// `decide` said `Cache`.
    pub async fn lookup(&self, facts: &StatementFacts, parts: &KeyParts) -> Lookup {
        let fields = read_fields(facts);
        let out = match &self.inner.redis {
            None => self.inner.lookup_local(&fields, parts),
            Some(redis) => self.inner.lookup_shared(redis, &fields, parts).await,
        };
        let c = &self.inner.counters;
        match &out {
            Lookup::Hit { tier, .. } => c.hit(*tier),
            Lookup::Miss(_) => c.miss(),
            Lookup::Bypass(reason) => c.bypass(*reason),
        }
        out
    }

    /// Single-flight for a missed key: the first caller leads (runs the query and calls
    /// `FillGuard::complete`), the others wait for its entry.
    pub fn begin_fill(&self, key: Key) -> Fill {
        match self.inner.flights.begin(key) {
            Flight::Leader(leader) => Fill::Leader(FillGuard::new(self.clone(), key, leader)),
            Flight::Follower(follower) => Fill::Follower(FillWaiter::new(follower, self.inner.fill_timeout)),
        }
    }

    /// Stores a complete response under `key` in both tiers, unless the policy refuses it
    /// (error, too large, unreplayable messages). Redis failures are ignored (fail open).
    pub async fn store(&self, key: &Key, entry: Entry) -> Result<(), BypassReason> {
        self.inner.check(&entry)?;
        self.inner.store_memory(key, &entry);
        self.inner.store_redis(key, &entry).await;
        Ok(())
    }

    /// Makes every entry that read what `scope` wrote unreachable, on every instance. Call it
    /// after the write committed and before relaying its ReadyForQuery. Never fails: if Redis
    /// cannot be told, the invalidation is kept and replayed, and this instance serves nothing
    /// from the cache until it is.
    pub async fn invalidate(&self, scope: &WriteScope) {
        let inner = &self.inner;
        inner.counters.invalidations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(fields) = write_fields(scope) else {
            return self.flush().await;
        };
        if fields.is_empty() {
            return;
        }
        let Some(redis) = &inner.redis else {
            inner.view.bump(&fields);
            return;
        };
        // A slow Redis (timeouts) is still serving the other instances' lookups, which would
        // go on accepting entries this write made stale: keep trying, the write's
        // ReadyForQuery held, within `invalidation_timeout`. A Redis that refuses or is gone
        // serves no instance's lookups either, so that is given up on at once (and replayed).
        let deadline = Instant::now() + inner.invalidation_budget;
        let mut limit = inner.invalidate_timeout;
        let seen = inner.view.seen();
        let outcome = loop {
            match redis.bump_gens(&fields, limit).await {
                Err(CacheError::Timeout(_)) if Instant::now() < deadline => {
                    limit = limit.saturating_mul(2).min(deadline.saturating_duration_since(Instant::now()).max(limit));
                }
                other => break other,
            }
        };
        match outcome {
            Ok(reading) => {
                inner.after_bump(redis, &fields, reading, seen).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cache: invalidation not published; serving nothing cached until it is");
                inner.counters.invalidation_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                inner.pending_lock().add_fields(fields);
            }
        }
    }

    /// Drops everything cached, on every instance (a new epoch; Redis entries of the old epoch
    /// are unreachable and expire by their TTL).
    pub async fn flush(&self) {
        let inner = &self.inner;
        let epoch = new_epoch();
        inner.view.rotate(epoch);
        inner.memory.clear();
        if let Some(redis) = &inner.redis {
            match redis.rotate_epoch(Replace::Any, epoch, inner.view.seen() + 1, inner.invalidate_timeout).await {
                Ok((now, seq)) => inner.adopt(now, seq, true),
                Err(e) => {
                    tracing::warn!(error = %e, "cache: flush not published; serving nothing cached until it is");
                    inner.pending_lock().set_rotate(epoch);
                }
            }
        }
    }

    /// For an admin `SHOW CACHE`.
    pub fn stats(&self) -> CacheStats {
        let i = &self.inner;
        let c = &i.counters;
        CacheStats {
            memory_entries: i.memory.len(),
            memory_bytes: i.memory.bytes(),
            memory_max_bytes: i.memory.max_bytes(),
            redis_breaker: i.redis.as_ref().map(|r| r.breaker_state()),
            pending_invalidations: i.pending_lock().len(),
            fills_in_flight: i.flights.in_flight(),
            hits_memory: load(&c.hits_memory),
            hits_redis: load(&c.hits_redis),
            misses: load(&c.misses),
            stores_memory: load(&c.stores_memory),
            stores_redis: load(&c.stores_redis),
            evictions_memory: load(&c.evictions_memory),
            expirations_memory: load(&c.expirations_memory),
            invalidations: load(&c.invalidations),
            invalidation_failures: load(&c.invalidation_failures),
            redis_resets: load(&c.redis_resets),
            bypass: c.bypass_counts(),
        }
    }

    /// Waits until Redis answers (true), or `limit` passes; true at once without Redis.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let Some(redis) = &self.inner.redis else { return true };
        let started = Instant::now();
        while started.elapsed() < limit {
            if redis.ping(Duration::from_millis(200)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Inner {
    pub(crate) fn check(&self, entry: &Entry) -> Result<(), BypassReason> {
        let result = self.policy.check_response(entry.bytes());
        if let Err(reason) = result {
            self.counters.bypass(reason);
        }
        result
    }

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn memory_get(&self, key: &Key) -> Option<Entry> {
        let (entry, expired) = self.memory.get(key);
        if expired {
            self.counters.evicted(0, 1);
        }
        entry
    }

    pub(crate) fn store_memory(&self, key: &Key, entry: &Entry) {
        if !self.memory.enabled() {
            return;
        }
        let out = self.memory.insert(*key, entry.clone(), Instant::now() + entry.remaining());
        self.counters.evicted(out.evicted, out.expired);
        if out.stored {
            self.counters.store(Tier::Memory);
        }
    }

    pub(crate) async fn store_redis(&self, key: &Key, entry: &Entry) {
        if let Some(redis) = &self.redis {
            if redis.set_entry(key, entry).await.is_ok() {
                self.counters.store(Tier::Redis);
            }
        }
    }

    fn lookup_local(&self, fields: &[String], parts: &KeyParts) -> Lookup {
        let key = Key::derive(parts, &self.view.snapshot(fields));
        match self.memory_get(&key) {
            Some(entry) => Lookup::Hit { entry, tier: Tier::Memory },
            None => Lookup::Miss(key),
        }
    }

    async fn lookup_shared(&self, redis: &RedisTier, fields: &[String], parts: &KeyParts) -> Lookup {
        if !self.replay_pending(redis).await {
            return Lookup::Bypass(BypassReason::Unavailable);
        }
        let seen = self.view.seen();
        let guess = self.view.snapshot(fields);
        let guess_key = Key::derive(parts, &guess);
        let reading = if let Some(entry) = self.memory_get(&guess_key) {
            match redis.fetch_gens(fields).await {
                Ok(reading) if reading.confirms(&guess, seen) => {
                    self.view.saw(reading.seq);
                    return Lookup::Hit { entry, tier: Tier::Memory };
                }
                Ok(reading) => reading,
                Err(_) => return Lookup::Bypass(BypassReason::Unavailable),
            }
        } else {
            let (gens, got) = tokio::join!(redis.fetch_gens(fields), redis.get_entry(&guess_key));
            let Ok(reading) = gens else { return Lookup::Bypass(BypassReason::Unavailable) };
            if reading.confirms(&guess, seen) {
                self.view.saw(reading.seq);
                return self.redis_outcome(guess_key, got);
            }
            reading
        };
        let Some(actual) = self.current(redis, fields, reading, seen).await else {
            return Lookup::Bypass(BypassReason::Unavailable);
        };
        let key = Key::derive(parts, &actual);
        if let Some(entry) = self.memory_get(&key) {
            return Lookup::Hit { entry, tier: Tier::Memory };
        }
        let got = redis.get_entry(&key).await;
        self.redis_outcome(key, got)
    }

    /// The generations `reading` shows, once it is known to be no older than `seen` (the `seq`
    /// seen before it was requested). Otherwise Redis went back in time or lost the hash: reset
    /// and read again under the new epoch. None when Redis cannot be asked or trusted now.
    async fn current(&self, redis: &RedisTier, fields: &[String], mut reading: Reading, mut seen: u64) -> Option<Snapshot> {
        for _ in 0..2 {
            match reading.epoch {
                Some(epoch) if reading.seq >= seen => {
                    let pairs = reading.pairs(fields);
                    if self.view.observe(epoch, reading.seq, &pairs) == Observed::NewEpoch {
                        self.memory.clear();
                    }
                    return Some(Snapshot::new(epoch, pairs));
                }
                found => {
                    if !self.reset(redis, found, reading.seq, seen).await {
                        return None;
                    }
                    seen = self.view.seen();
                    reading = redis.fetch_gens(fields).await.ok()?;
                }
            }
        }
        None
    }

    /// Takes in the reading a write's bumps returned (`seen`: the `seq` seen before they were
    /// sent), announcing it; or resets if it shows Redis went back in time or lost the hash.
    async fn after_bump(&self, redis: &RedisTier, fields: &[String], reading: Reading, seen: u64) -> bool {
        match reading.epoch {
            // The bump itself raised `seq`, so anything short of `seen + 1` went back in time.
            Some(epoch) if reading.seq > seen => {
                let values = reading.pairs(fields);
                if self.view.observe(epoch, reading.seq, &values) == Observed::NewEpoch {
                    self.memory.clear();
                }
                self.publish(Event::Bumped { epoch, seq: reading.seq, values });
                true
            }
            found => self.reset(redis, found, reading.seq, seen).await,
        }
    }

    /// Redis's generations cannot be trusted: its `seq` is below `seen` (it went back in time)
    /// or it has no epoch (it lost the hash, or never had one). Everything cached before is
    /// invalid: the in-process tier is emptied and a new epoch replaces `found` in Redis, unless
    /// another instance has replaced it already (then that one is taken). True once Redis has
    /// an epoch this instance may use; if Redis cannot be told, a flush is kept pending, so
    /// nothing is served until it is.
    async fn reset(&self, redis: &RedisTier, found: Option<u64>, found_seq: u64, seen: u64) -> bool {
        let went_back = found_seq < seen || (found.is_none() && seen > 0);
        self.memory.clear();
        let epoch = new_epoch();
        let floor = found_seq.max(self.view.seen()) + 1;
        let outcome = redis.rotate_epoch(Replace::Seen(found), epoch, floor, self.invalidate_timeout).await;
        // Concurrent lookups notice together; only the one whose epoch won (or will, from the
        // pending flush) reports it.
        if went_back && outcome.as_ref().map_or(true, |(now, _)| *now == Some(epoch)) {
            self.counters.redis_resets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                seq = found_seq,
                seen,
                "cache: redis went back in time (restarted from an older snapshot, failed over to a replica that lagged, or lost its data); a new epoch drops everything cached before"
            );
        }
        match outcome {
            Ok((Some(now), seq)) => {
                self.adopt(Some(now), seq, now == epoch);
                true
            }
            Ok((None, _)) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cache: new epoch not installed; serving nothing cached until it is");
                self.pending_lock().set_rotate(epoch);
                false
            }
        }
    }

    /// Takes in the epoch a rotation left in Redis and, if it is this instance's (`announce`),
    /// announces it, so the other instances drop their in-process tier at once rather than at
    /// their next reading.
    fn adopt(&self, epoch: Option<u64>, seq: u64, announce: bool) {
        let Some(epoch) = epoch else { return };
        if self.view.observe(epoch, seq, &[]) == Observed::NewEpoch {
            self.memory.clear();
        }
        if announce {
            self.publish(Event::Flushed { epoch, seq });
        }
    }

    /// Announces an event to the other instances without delaying the caller: it is only a hint.
    fn publish(&self, event: Event) {
        if let Some(redis) = &self.redis {
            redis.publish_detached(event.encode());
        }
    }

    /// A Redis GET's result under validated generations: a hit is copied into memory.
    fn redis_outcome(&self, key: Key, got: Result<Option<Entry>, CacheError>) -> Lookup {
        match got {
            Ok(Some(entry)) if !entry.remaining().is_zero() => {
                self.store_memory(&key, &entry);
                Lookup::Hit { entry, tier: Tier::Redis }
            }
            _ => Lookup::Miss(key),
        }
    }

    /// Publishes invalidations that failed earlier. True when none are left; false while they
    /// cannot be published (or another task is publishing them), and then nothing may be served.
    pub(crate) async fn replay_pending(&self, redis: &RedisTier) -> bool {
        let token = match Pending::start(&self.pending) {
            Start::Clear => return true,
            Start::Busy => return false,
            Start::Go(token) => token,
        };
        let mut ok = true;
        if let Some(epoch) = token.work.rotate {
            ok = match redis.rotate_epoch(Replace::Any, epoch, self.view.seen() + 1, self.invalidate_timeout).await {
                Ok((now, seq)) => {
                    self.adopt(now, seq, true);
                    true
                }
                Err(_) => false,
            };
        }
        if ok && !token.work.fields.is_empty() {
            let fields: Vec<String> = token.work.fields.iter().cloned().collect();
            let seen = self.view.seen();
            ok = match redis.bump_gens(&fields, self.invalidate_timeout).await {
                Ok(reading) => self.after_bump(redis, &fields, reading, seen).await,
                Err(_) => false,
            };
        }
        token.finish(ok)
    }

    /// An event from another instance.
    fn apply(&self, event: Event) {
        match event {
            Event::Bumped { epoch, seq, values } => {
                if self.view.observe(epoch, seq, &values) == Observed::NewEpoch {
                    self.memory.clear();
                }
            }
            Event::Flushed { epoch, seq } => {
                self.memory.clear();
                self.view.observe(epoch, seq, &[]);
            }
        }
    }

    /// Reads Redis's epoch and `seq` alone, so that a rollback is noticed (and the in-process
    /// tier dropped) soon even while this instance serves nothing.
    pub(crate) async fn check_redis(&self, redis: &RedisTier) {
        let seen = self.view.seen();
        if let Ok(reading) = redis.fetch_gens(&[]).await {
            let _ = self.current(redis, &[], reading, seen).await;
        }
    }
}
