//! The `[cache]` section as the proxy's key registry reads it, and its translation into the
//! cache crate's own configuration (`cache.tables` and `cache.rules` become one rule list).

use std::time::Duration;

use citus_proxy_cache::{CacheConfig, Rule};
use serde::Deserialize;

use super::value::{de_duration, parse_duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    pub enabled: bool,
    pub redis_url: String,
    pub redis_cluster: String,
    pub redis_prefix: String,
    pub memory_max_bytes: u64,
    pub max_entry_bytes: u64,
    #[serde(deserialize_with = "de_duration")]
    pub default_ttl: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub redis_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub invalidation_timeout: Duration,
    pub breaker_failures: u32,
    #[serde(deserialize_with = "de_duration")]
    pub breaker_cooldown: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub fill_timeout: Duration,
    pub cacheable_functions: String,
    /// Settings left out of cache keys (see `Planner::new`).
    pub ignored_settings: String,
    pub tables: String,
    pub rules: Vec<RuleEntry>,
}

/// One `[[cache.rules]]` entry (checked field by field when the file is read).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub table: Option<String>,
    pub shape: Option<String>,
    pub ttl: Option<String>,
}

impl CacheSection {
    /// The cache crate's configuration; errors name the key.
    pub fn to_cache_config(&self) -> Result<CacheConfig, String> {
        let mut rules = Vec::new();
        for item in self.tables.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (table, ttl) = match item.split_once('=') {
                Some((t, d)) => (t.trim(), Some(parse_duration(d).map_err(|e| format!("cache.tables: `{item}`: {e}"))?)),
                None => (item, None),
            };
            if table.is_empty() {
                return Err(format!("cache.tables: `{item}` names no table"));
            }
            rules.push(Rule { table: Some(table.to_string()), shape: None, ttl });
        }
        for (i, r) in self.rules.iter().enumerate() {
            let ttl = r.ttl.as_deref().map(parse_duration).transpose().map_err(|e| format!("cache.rules[{i}].ttl: {e}"))?;
            rules.push(Rule { table: r.table.clone(), shape: r.shape.clone(), ttl });
        }
        let functions = self.cacheable_functions.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        Ok(CacheConfig {
            redis_url: (!self.redis_url.trim().is_empty()).then(|| self.redis_url.trim().to_string()),
            redis_cluster: match self.redis_cluster.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            },
            redis_prefix: self.redis_prefix.clone(),
            memory_max_bytes: self.memory_max_bytes,
            max_entry_bytes: self.max_entry_bytes,
            default_ttl: self.default_ttl,
            redis_timeout: self.redis_timeout,
            invalidation_timeout: self.invalidation_timeout,
            breaker_failures: self.breaker_failures,
            breaker_cooldown: self.breaker_cooldown,
            fill_timeout: self.fill_timeout,
            cacheable_functions: functions,
            rules,
        })
    }
}
