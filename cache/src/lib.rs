//! Result cache for citus-proxy: reads the operator marks cacheable are answered with exactly the
//! bytes the coordinator sent the first time, from an in-process tier (bounded in bytes) in front
//! of an optional Redis (single server or cluster) that all proxy instances share.
//!
//! The crate parses no SQL: the proxy hands it the router's facts (hint comments included, read by
//! the router's one hint grammar) as plain values, so it does not depend on the router.
//!
//! # Per statement (the proxy's connection loop)
//!
//! ```text
//! facts.hint = ttl of the router's hint comment, if any;
//! match cache.decide(&facts, &session) {
//!     Decision::Bypass(_) => relay upstream,
//!     Decision::Cache { ttl } => {
//!         let parts = KeyParts::builder(&session).statement(sql).protocol(Protocol::Simple)
//!             /* .param_types(..).param_formats(..).params(..).result_formats(..) */ .finish();
//!         match cache.lookup(&facts, &parts).await {
//!             Lookup::Hit { entry, .. } => write entry.bytes(), then the session's ReadyForQuery,
//!             Lookup::Bypass(_) => relay upstream,
//!             Lookup::Miss(key) => match cache.begin_fill(key) {
//!                 Fill::Follower(w) => match w.wait().await {
//!                     Some(entry) => write entry.bytes() + ReadyForQuery,
//!                     None => relay upstream,
//!                 },
//!                 Fill::Leader(guard) => {
//!                     relay upstream, feeding every byte before ReadyForQuery to a
//!                     ResponseCollector::new(cache.policy().max_entry_bytes());
//!                     match collector.finish() {
//!                         Ok(bytes) => { let _ = guard.complete(Entry::new(bytes, ttl)).await; }
//!                         Err(reason) => guard.abandon(reason),
//!                     }
//!                 }
//!             },
//!         }
//!     }
//! }
//! ```
//!
//! # Writes
//!
//! Outside a transaction: after the write's CommandComplete, `cache.invalidate(&scope).await`
//! *before* relaying its ReadyForQuery. Inside one: `session.pending_writes.record(scope)`, and at
//! COMMIT invalidate each of `pending_writes.take()` before relaying the COMMIT's ReadyForQuery
//! (ROLLBACK: `clear()`). GRANT/REVOKE/ALTER ROLE/policies and writes of unknown tables:
//! `WriteScope::Everything`. `cache.flush().await` is the admin flush.
//!
//! # Guarantees
//!
//! - Keys (SHA-256) cover database, login role, every reported/SET setting except a few that
//!   cannot change results, statement text, protocol, parameter types/formats/values, result
//!   formats, and the generations of every table/shard read: one role never gets another's rows.
//! - Read-your-writes across instances with Redis: every lookup validates the generations in
//!   Redis (one round trip, fetched together with the entry); see `facade.rs` for the argument.
//!   Redis going back in time (restart from an older snapshot, failover to a replica that
//!   lagged) is noticed by a sequence number that never goes down, and starts a new epoch.
//!   Without Redis the generations are local and exact (a single instance).
//! - Fail open: Redis errors, timeouts (`redis_timeout`, a few ms) and the open circuit breaker
//!   turn into misses or bypasses, never into client errors.

mod breaker;
mod config;
mod entry;
mod error;
mod facade;
mod facts;
mod fill;
mod generations;
mod key;
mod memory;
mod pending;
mod policy;
mod redis_tier;
mod single_flight;
mod stats;
mod subscriber;
mod upkeep;
mod volatility;

pub use config::{parse_duration, CacheConfig, Rule};
pub use entry::{validate_response, Entry, ResponseCollector, MAX_TTL};
pub use error::CacheError;
pub use facade::{Cache, Lookup};
pub use facts::{PendingWrites, SessionView, ShardRef, ShardScope, StatementFacts, TableId, WriteScope};
pub use fill::{Fill, FillGuard, FillWaiter};
pub use generations::Snapshot;
pub use key::{Key, KeyBuilder, KeyParts, Protocol, SessionPrefix};
pub use policy::{BypassReason, Decision, Policy};
pub use stats::{CacheStats, Tier};
pub use volatility::{function_class, function_is_cacheable, FunctionClass};
