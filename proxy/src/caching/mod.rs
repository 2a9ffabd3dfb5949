//! The result cache in the connection loop. The routing hooks turn each statement's route
//! decision into a [`CachePlan`] (a cacheable read with its key, or what a write makes stale);
//! the relay carries it out: it answers hits without the coordinator, fills misses from the
//! relayed response, and invalidates before a write's ReadyForQuery reaches the client.

mod batch;
mod facts;
mod plan;
mod session;

use std::time::Duration;

use citus_proxy_cache::{BypassReason, Cache, CacheConfig, Decision as CacheDecision, Policy, SessionView, StatementFacts, WriteScope};
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::{Decision, Topology};

pub use batch::BatchShape;
pub use plan::{CachePlan, ReadPlan};
pub use session::{SessionCache, Statement};

use crate::settings::TempRelations;

/// Builds the process's cache from its configuration; the error names the key at fault.
pub fn build(config: &CacheConfig) -> Result<Cache, String> {
    let policy = Policy::new(config, |sql| Some(shape_hash(sql))).map_err(|e| e.to_string())?;
    Cache::new(config, policy).map_err(|e| e.to_string())
}

/// The hash that `shape` rules and statements are matched by: the router's shape id of the
/// literal-stripped text, so `… WHERE id = $1` in a rule matches `… WHERE id = 42` (a statement's
/// own is in its analysis, computed once per shape).
pub fn shape_hash(sql: &str) -> u64 {
    citus_proxy_router::shape::shape_id(&citus_proxy_router::shape::normalize(sql).shape)
}

/// Shared by every session: turns route decisions into cache plans.
#[derive(Clone)]
pub struct Planner {
    cache: Cache,
    /// `cache.ignored_settings`: settings the operator declares no cached statement reads (lower case).
    ignored_settings: std::sync::Arc<[String]>,
}

impl Planner {
    /// `ignored_settings`: the comma-separated `cache.ignored_settings`.
    pub fn new(cache: Cache, ignored_settings: &str) -> Planner {
        let ignored_settings = ignored_settings.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
        Planner { cache, ignored_settings }
    }

    /// Whether the operator declared that no cached statement reads `setting`.
    pub fn ignores(&self, setting: &str) -> bool {
        self.ignored_settings.iter().any(|s| s == setting)
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The facts and TTL of a read the policy lets the cache answer; None otherwise (the reason
    /// is counted). `shape` is the statement's shape id (matched against shape rules).
    pub fn read(
        &self,
        d: &Decision,
        topo: &Topology,
        search_path: &[&str],
        session: &SessionView,
        temp: &TempRelations,
        shape: u64,
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
        let mut facts = facts::read_facts(d, info, topo, search_path, temp);
        facts.hint = hint_ttl;
        facts.shape = shape;
        match self.cache.decide(&facts, session) {
            CacheDecision::Cache { ttl } => Some((facts, ttl)),
            CacheDecision::Bypass(_) => None,
        }
    }

    /// What the statements of `d` make stale (empty when they write nothing).
    pub fn writes(&self, d: &Decision, topo: &Topology, search_path: &[&str], sql: &str) -> Vec<WriteScope> {
        facts::write_scopes(d, topo, search_path, sql, self.cache.policy())
    }
}
