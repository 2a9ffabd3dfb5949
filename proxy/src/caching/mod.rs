//! The result cache in the connection loop. The routing hooks turn each statement's route
//! decision into a [`CachePlan`] (a cacheable read with its key, or what a write makes stale);
//! the relay carries it out: it answers hits without the coordinator, fills misses from the
//! relayed response, and invalidates before a write's ReadyForQuery reaches the client.

mod batch;
mod facts;
mod plan;
mod session;
mod settings;

use std::hash::{Hash, Hasher};
use std::time::Duration;

use citus_proxy_cache::{BypassReason, Cache, CacheConfig, Decision as CacheDecision, Policy, StatementFacts, WriteScope};
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::{Decision, Topology};

pub use batch::BatchShape;
pub use facts::first_word;
pub use plan::{CachePlan, ReadPlan};
pub use session::{SessionCache, Statement};
pub use settings::{changes_settings, Settings};

/// Builds the process's cache from its configuration; the error names the key at fault.
pub fn build(config: &CacheConfig) -> Result<Cache, String> {
    let policy = Policy::new(config, |sql| Some(shape_hash(sql))).map_err(|e| e.to_string())?;
    Cache::new(config, policy).map_err(|e| e.to_string())
}

/// The hash that `shape` rules and statements are matched by: the router's literal-stripped
/// text, so `… WHERE id = $1` in a rule matches `… WHERE id = 42`.
pub fn shape_hash(sql: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    citus_proxy_router::shape::normalize(sql).shape.hash(&mut h);
    h.finish()
}

/// Shared by every session: turns route decisions into cache plans.
#[derive(Clone)]
pub struct Planner {
    cache: Cache,
}

impl Planner {
    pub fn new(cache: Cache) -> Planner {
        Planner { cache }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The facts and TTL of a read the policy lets the cache answer; None otherwise (the reason
    /// is counted). `shape` is computed only when shape rules exist.
    pub fn read(
        &self,
        d: &Decision,
        topo: &Topology,
        search_path: &[&str],
        settings: &Settings,
        shape: impl FnOnce() -> u64,
    ) -> Option<(StatementFacts, Duration)> {
        let [info] = d.analysis.statements.as_slice() else { return None };
        if info.kind != StatementKind::Read {
            return None;
        }
        let hint = d.analysis.cache_hint;
        let hint_ttl = hint.filter(|h| !h.disabled).and_then(|h| h.ttl);
        let policy = self.cache.policy();
        if hint.is_some_and(|h| h.disabled) || (hint_ttl.is_none() && !policy.has_rules()) {
            // The common case costs no resolution of tables; without any rule it is not even
            // counted (every unhinted read would be, on one counter shared by all cores).
            if policy.has_rules() || hint.is_some() {
                self.cache.record_bypass(BypassReason::NotOptedIn);
            }
            return None;
        }
        let mut facts = facts::read_facts(d, info, topo, search_path);
        facts.hint = hint_ttl;
        if policy.has_shape_rules() {
            facts.shape = shape();
        }
        match self.cache.decide(&facts, settings.view()) {
            CacheDecision::Cache { ttl } => Some((facts, ttl)),
            CacheDecision::Bypass(_) => None,
        }
    }

    /// What the statements of `d` make stale (empty when they write nothing).
    pub fn writes(&self, d: &Decision, topo: &Topology, search_path: &[&str], sql: &str) -> Vec<WriteScope> {
        facts::write_scopes(d, topo, search_path, sql, self.cache.policy())
    }
}
