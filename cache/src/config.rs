//! `[cache]` configuration. Durations are written as humantime strings (`"30s"`, `"5ms"`).

use std::time::Duration;

use serde::Deserialize;

use crate::error::CacheError;

/// The whole `[cache]` section. Every field has a default, so an empty section (or none) gives an
/// in-process cache of 64 MiB with no Redis and no rules: nothing is cached until the operator opts
/// statements in by rules or hint comments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `redis://host:port[/db]`, or a comma-separated list of nodes for Redis Cluster. None: the
    /// in-process tier runs alone and generations are local (exact for one proxy instance only).
    pub redis_url: Option<String>,
    /// Force cluster mode on/off; None: cluster when `redis_url` lists more than one node.
    pub redis_cluster: Option<bool>,
    /// Prefix of every Redis key and of the pub/sub channel, so several deployments (or test
    /// cases) can share one Redis without seeing each other.
    pub redis_prefix: String,
    /// Bound of the in-process tier in bytes (entry bytes plus a fixed per-entry overhead); 0
    /// disables the in-process tier.
    pub memory_max_bytes: u64,
    /// Largest response cached, in bytes; larger responses are relayed and not stored.
    pub max_entry_bytes: u64,
    /// TTL of a table or shape rule that does not name its own.
    #[serde(with = "duration")]
    pub default_ttl: Duration,
    /// Per-operation Redis timeout. Keep it to a few milliseconds: a slow Redis must cost a
    /// client no more than this before the statement goes upstream.
    #[serde(with = "duration")]
    pub redis_timeout: Duration,
    /// How long a write waits for its invalidation when Redis answers too slowly (its
    /// ReadyForQuery is held meanwhile). Past it, or at once when Redis refuses, the invalidation
    /// is kept and replayed; until then other instances may serve entries the write made stale.
    #[serde(with = "duration")]
    pub invalidation_timeout: Duration,
    /// Consecutive Redis failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe is let through.
    #[serde(with = "duration")]
    pub breaker_cooldown: Duration,
    /// How long a concurrent miss waits for the single in-flight upstream query of its key
    /// before it goes upstream itself.
    #[serde(with = "duration")]
    pub fill_timeout: Duration,
    /// Functions the operator declares safe to cache (stable or immutable) beyond the built-in
    /// list; names as called, optionally schema-qualified. Built-in volatile functions (now(),
    /// random(), …) stay uncacheable whatever this says.
    pub cacheable_functions: Vec<String>,
    pub rules: Vec<Rule>,
}

/// `[[cache.rules]]`: opt a table's reads, or one statement shape, into caching.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `name` (any schema) or `schema.name`. A statement is cached by table rules only when
    /// every table it reads has one; its TTL is then the smallest of theirs.
    #[serde(default)]
    pub table: Option<String>,
    /// A statement written with placeholders for its literals (`SELECT … WHERE id = $1`); it
    /// is matched by the router's literal-stripped shape hash.
    #[serde(default)]
    pub shape: Option<String>,
    #[serde(default, with = "opt_duration")]
    pub ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            redis_url: None,
            redis_cluster: None,
            redis_prefix: "citus-proxy".into(),
            memory_max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            default_ttl: Duration::from_secs(60),
            redis_timeout: Duration::from_millis(5),
            invalidation_timeout: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(1),
            fill_timeout: Duration::from_secs(5),
            cacheable_functions: Vec::new(),
            rules: Vec::new(),
        }
    }
}

impl CacheConfig {
    /// Rejects values the cache cannot run with; called by `Cache::new` and `Policy::new`.
    pub fn validate(&self) -> Result<(), CacheError> {
        let bad = |m: String| Err(CacheError::Config(m));
        if self.max_entry_bytes == 0 {
            return bad("cache.max_entry_bytes must be > 0".into());
        }
        if self.redis_timeout.is_zero() || self.redis_timeout > Duration::from_secs(10) {
            return bad("cache.redis_timeout must be within (0s, 10s]".into());
        }
        if self.breaker_cooldown > Duration::from_secs(3600) || self.fill_timeout > Duration::from_secs(3600) {
            return bad("cache.breaker_cooldown and cache.fill_timeout must be at most 1h".into());
        }
        if self.invalidation_timeout > Duration::from_secs(60) {
            return bad("cache.invalidation_timeout must be at most 60s".into());
        }
        if self.breaker_failures == 0 {
            return bad("cache.breaker_failures must be >= 1".into());
        }
        if self.default_ttl.is_zero() {
            return bad("cache.default_ttl must be > 0".into());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return bad("cache.redis_prefix must be a non-empty word".into());
        }
        if self.redis_url.is_some() && self.redis_nodes().is_empty() {
            return bad("cache.redis_url is set but names no node".into());
        }
        for node in self.redis_nodes() {
            if !(node.starts_with("redis://") || node.starts_with("rediss://")) {
                return bad(format!("cache.redis_url: `{node}` is not a redis:// URL"));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            match (&rule.table, &rule.shape) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => return bad(format!("cache.rules[{i}]: give exactly one of `table` or `shape`")),
            }
            if rule.ttl.is_some_and(|t| t.is_zero()) {
                return bad(format!("cache.rules[{i}]: ttl must be > 0"));
            }
        }
        Ok(())
    }

    /// The configured Redis nodes, trimmed; empty without Redis.
    pub fn redis_nodes(&self) -> Vec<String> {
        self.redis_url
            .as_deref()
            .map(|u| u.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }

    /// Whether the nodes are a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.redis_cluster.unwrap_or(self.redis_nodes().len() > 1)
    }
}

/// Parses `"30s"`, `"500ms"`, `"2m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration: {e}"))
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
    }
}
