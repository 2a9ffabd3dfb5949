//! Whether a statement may be served from / stored in the cache, and for how long. Pure: no I/O,
//! no clock, so every rule is a unit test.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::config::CacheConfig;
use crate::error::CacheError;
use crate::facts::{SessionView, StatementFacts, TableId};
use crate::volatility::{function_class, normalize, FunctionClass};

/// The outcome for one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Cache { ttl: Duration },
    Bypass(BypassReason),
}

/// Why a statement was not served from or stored in the cache. `as_str` is the stable label of
/// `citus_proxy_cache_bypass_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BypassReason {
    /// Inside an explicit transaction block.
    Transaction,
    /// Not a plain read.
    Write,
    /// Calls a volatile or unknown function.
    VolatileFunction,
    /// FOR UPDATE / FOR SHARE.
    LockingClause,
    /// Reads temporary tables or catalogs.
    TempOrCatalog,
    /// Reads a view, or a relation the metadata snapshot does not know: the writes that would
    /// have to invalidate it cannot be recognised.
    UnknownRelation,
    /// Reads a table the session wrote in its still-open transaction.
    UncommittedWrites,
    /// The session may have changed settings the proxy could not track.
    UntrackedSettings,
    /// No rule and no hint opts the statement in.
    NotOptedIn,
    /// The response carried an ErrorResponse.
    ErrorResult,
    /// The response exceeded `max_entry_bytes`.
    TooLarge,
    /// The response holds messages a replay must not repeat (COPY, ParameterStatus,
    /// PortalSuspended, notifications) or is malformed.
    UnsupportedResponse,
    /// Redis is configured but unreachable (or this instance has invalidations it could not
    /// publish yet), so freshness cannot be proven: fail open to the coordinator.
    Unavailable,
}

impl BypassReason {
    pub const ALL: [BypassReason; 13] = [
        BypassReason::Transaction,
        BypassReason::Write,
        BypassReason::VolatileFunction,
        BypassReason::LockingClause,
        BypassReason::TempOrCatalog,
        BypassReason::UnknownRelation,
        BypassReason::UncommittedWrites,
        BypassReason::UntrackedSettings,
        BypassReason::NotOptedIn,
        BypassReason::ErrorResult,
        BypassReason::TooLarge,
        BypassReason::UnsupportedResponse,
        BypassReason::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BypassReason::Transaction => "transaction",
            BypassReason::Write => "write",
            BypassReason::VolatileFunction => "volatile_function",
            BypassReason::LockingClause => "locking_clause",
            BypassReason::TempOrCatalog => "temp_or_catalog",
            BypassReason::UnknownRelation => "unknown_relation",
            BypassReason::UncommittedWrites => "uncommitted_writes",
            BypassReason::UntrackedSettings => "untracked_settings",
            BypassReason::NotOptedIn => "not_opted_in",
            BypassReason::ErrorResult => "error_result",
            BypassReason::TooLarge => "too_large",
            BypassReason::UnsupportedResponse => "unsupported_response",
            BypassReason::Unavailable => "unavailable",
        }
    }
}

/// The operator's rules, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    /// (schema or None for any schema, table) → TTL.
    table_rules: HashMap<(Option<String>, String), Duration>,
    shape_rules: HashMap<u64, Duration>,
    allowed_functions: HashSet<String>,
    max_entry_bytes: usize,
}

impl Policy {
    /// `shape_of` is the router's literal-stripped shape hash of a SQL text (the same function
    /// that fills `StatementFacts::shape`); a shape rule it cannot hash is a configuration error.
    pub fn new(config: &CacheConfig, shape_of: impl Fn(&str) -> Option<u64>) -> Result<Policy, CacheError> {
        config.validate()?;
        let mut table_rules = HashMap::new();
        let mut shape_rules = HashMap::new();
        for rule in &config.rules {
            let ttl = rule.ttl.unwrap_or(config.default_ttl);
            if let Some(table) = &rule.table {
                let key = parse_table(table).ok_or_else(|| CacheError::Config(format!("cache.rules: `{table}` is not a table name")))?;
                table_rules.insert(key, ttl);
            }
            if let Some(shape) = &rule.shape {
                let hash = shape_of(shape).ok_or_else(|| CacheError::Config(format!("cache.rules: cannot parse shape `{shape}`")))?;
                shape_rules.insert(hash, ttl);
            }
        }
        Ok(Policy {
            table_rules,
            shape_rules,
            allowed_functions: config.cacheable_functions.iter().map(|f| normalize(f)).collect(),
            max_entry_bytes: usize::try_from(config.max_entry_bytes).unwrap_or(usize::MAX),
        })
    }

    /// Whether the statement may be cached, and its TTL. Order: the never-cached rules first
    /// (they hold whatever a rule or hint says), then hint > shape rule > table rules.
    pub fn decide(&self, facts: &StatementFacts, session: &SessionView) -> Decision {
        if let Some(reason) = self.never_cached(facts, session) {
            return Decision::Bypass(reason);
        }
        match self.ttl(facts) {
            Some(ttl) => Decision::Cache { ttl },
            None => Decision::Bypass(BypassReason::NotOptedIn),
        }
    }

    fn never_cached(&self, facts: &StatementFacts, session: &SessionView) -> Option<BypassReason> {
        if session.in_transaction {
            return Some(BypassReason::Transaction);
        }
        if !facts.read_only {
            return Some(BypassReason::Write);
        }
        if facts.has_locking_clause {
            return Some(BypassReason::LockingClause);
        }
        if facts.touches_temp_or_catalog {
            return Some(BypassReason::TempOrCatalog);
        }
        if facts.reads_unknown_relation {
            return Some(BypassReason::UnknownRelation);
        }
        if facts.functions.iter().any(|f| !self.function_is_cacheable(f)) {
            return Some(BypassReason::VolatileFunction);
        }
        if session.untracked_settings {
            return Some(BypassReason::UntrackedSettings);
        }
        if session.pending_writes.conflicts(&facts.tables) {
            return Some(BypassReason::UncommittedWrites);
        }
        None
    }

    fn ttl(&self, facts: &StatementFacts) -> Option<Duration> {
        if let Some(ttl) = facts.hint {
            return Some(ttl);
        }
        if let Some(ttl) = self.shape_rules.get(&facts.shape) {
            return Some(*ttl);
        }
        if facts.tables.is_empty() {
            return None;
        }
        // Every table read must be opted in; the entry lives as long as the shortest TTL.
        facts.tables.iter().map(|t| self.table_ttl(t)).try_fold(Duration::MAX, |acc, t| t.map(|t| acc.min(t)))
    }

    fn table_ttl(&self, table: &TableId) -> Option<Duration> {
        self.table_rules
            .get(&(Some(table.schema.clone()), table.name.clone()))
            .or_else(|| self.table_rules.get(&(None, table.name.clone())))
            .copied()
    }

    /// Built-in classification plus the operator's allow-list (which can only rescue unknown
    /// functions, never the built-in volatile ones).
    pub fn function_is_cacheable(&self, name: &str) -> bool {
        match function_class(name) {
            FunctionClass::Safe => true,
            FunctionClass::Volatile => false,
            FunctionClass::Unknown => {
                let name = normalize(name);
                let bare = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                self.allowed_functions.contains(&name) || self.allowed_functions.contains(bare)
            }
        }
    }

    /// Whether any rule opts statements in (without one only hint comments can).
    pub fn has_rules(&self) -> bool {
        !self.table_rules.is_empty() || !self.shape_rules.is_empty()
    }

    /// Whether shape rules exist, so a caller knows if `StatementFacts::shape` must be filled.
    pub fn has_shape_rules(&self) -> bool {
        !self.shape_rules.is_empty()
    }

    pub fn max_entry_bytes(&self) -> usize {
        self.max_entry_bytes
    }

    /// Whether a complete response may be stored: no error, within the size limit, nothing a
    /// replay must not repeat. See [`crate::entry::validate_response`].
    pub fn check_response(&self, response: &[u8]) -> Result<(), BypassReason> {
        if response.len() > self.max_entry_bytes {
            return Err(BypassReason::TooLarge);
        }
        crate::entry::validate_response(response)
    }
}

/// `users` → (None, users); `public.users` → (Some(public), users); quotes keep case.
fn parse_table(s: &str) -> Option<(Option<String>, String)> {
    let parts: Vec<String> = normalize(s).split('.').map(String::from).collect();
    match parts.as_slice() {
        [name] if !name.is_empty() => Some((None, name.clone())),
        [schema, name] if !schema.is_empty() && !name.is_empty() => Some((Some(schema.clone()), name.clone())),
        _ => None,
    }
}
