//! One reload, used by the RELOAD console command and by SIGHUP: re-read the catalog, re-read and
//! validate the configuration, apply the keys that can change while running, and say which
//! changed keys need a restart. A configuration with errors is reported and nothing is applied.

use std::sync::Arc;

use crate::config::Config;
use crate::context::Context;

/// Keys applied to the running proxy. The rest (listeners, upstream, TLS, cache, worker threads,
/// `limits.max_client_connections` — a pool sized at start —, the SLO window) need a restart.
/// A key is live only when the code reads it from `Context::live()` at use.
const LIVE_KEYS: &[&str] = &[
    "log.level",
    "limits.max_message_size",
    "limits.idle_timeout",
    "limits.startup_timeout",
    "slo.percentile",
    "slo.single_shard_query",
    "slo.multi_shard_aggregation",
    "slo.count",
    "slo.vector_search",
    "slo.bulk_insert",
    "slo.shard_creation",
    "slo.worker_registration",
    "admin.users",
    "admin.auth_database",
    // Read by pool::pools and session::pooled at each use (pool.mode needs a restart).
    "pool.size",
    "pool.min_size",
    "pool.max_db_connections",
    "pool.max_server_connections",
    "pool.wait_timeout",
    "pool.server_idle_timeout",
    "pool.server_lifetime",
    "pool.server_check_delay",
    "pool.reset_query",
];

pub fn applies_live(key: &str) -> bool {
    LIVE_KEYS.contains(&key)
}

/// What became of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOutcome {
    /// Errors (every one, each naming its key); the running configuration is kept.
    Invalid(String),
    Unchanged,
    Changed {
        applied: Vec<String>,
        restart_needed: Vec<String>,
        not_applied: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub metadata: String,
    pub config: ConfigOutcome,
}

impl ReloadReport {
    pub fn config_text(&self) -> String {
        match &self.config {
            ConfigOutcome::Invalid(e) => format!("invalid, not applied: {e}"),
            ConfigOutcome::Unchanged => "valid, unchanged".into(),
            ConfigOutcome::Changed { applied, restart_needed, not_applied } => {
                let mut parts = Vec::new();
                if !applied.is_empty() {
                    parts.push(format!("applied: {}", applied.join(", ")));
                }
                if !not_applied.is_empty() {
                    parts.push(format!("could not apply: {}", not_applied.join(", ")));
                }
                if !restart_needed.is_empty() {
                    parts.push(format!("changed, restart to apply: {}", restart_needed.join(", ")));
                }
                format!("valid; {}", parts.join("; "))
            }
        }
    }
}

pub async fn reload(ctx: &Context) -> ReloadReport {
    let metadata = match &ctx.loader {
        Some(loader) => match ctx.metadata.refresh(loader, &ctx.metrics).await {
            Ok(()) => {
                let g = ctx.metadata.topology();
                let (t, n) = g.as_ref().map(|t| (t.tables().len(), t.nodes().len())).unwrap_or((0, 0));
                format!("reloaded: {t} tables, {n} nodes")
            }
            Err(e) => format!("failed, keeping the last snapshot: {e}"),
        },
        None => "routing is off (routing.enabled = false)".into(),
    };
    let src = &ctx.source;
    let config = match crate::config::load(src.file.as_deref(), &src.overrides, |n| std::env::var(n).ok()) {
        Ok(fresh) => apply(ctx, fresh),
        Err(e) => ConfigOutcome::Invalid(crate::config::mask::mask_url(&e.to_string())),
    };
    ReloadReport { metadata, config }
}

/// Applies the live keys of `fresh` that differ from the configuration in force.
fn apply(ctx: &Context, fresh: Config) -> ConfigOutcome {
    let current = ctx.live();
    let changed: Vec<String> = fresh
        .values
        .iter()
        .filter(|(k, val)| current.values.iter().find(|(k2, _)| k2 == k).map(|(_, v2)| v2) != Some(val))
        .map(|(k, _)| k.clone())
        .collect();
    if changed.is_empty() {
        return ConfigOutcome::Unchanged;
    }
    let (live, restart_needed): (Vec<String>, Vec<String>) = changed.into_iter().partition(|k| applies_live(k));
    let mut next: Config = Config::clone(&current);
    let mut applied = Vec::new();
    let mut not_applied = Vec::new();
    for key in &live {
        let ok = match key.as_str() {
            "log.level" => match crate::logging::set_level(&fresh.log.level) {
                Ok(()) => {
                    next.log.level = fresh.log.level.clone();
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "log.level not applied");
                    false
                }
            },
            "limits.max_message_size" => {
                next.limits.max_message_size = fresh.limits.max_message_size;
                true
            }
            "limits.idle_timeout" => {
                next.limits.idle_timeout = fresh.limits.idle_timeout;
                true
            }
            "limits.startup_timeout" => {
                next.limits.startup_timeout = fresh.limits.startup_timeout;
                true
            }
            "admin.users" => {
                next.admin.users = fresh.admin.users.clone();
                true
            }
            "admin.auth_database" => {
                next.admin.auth_database = fresh.admin.auth_database.clone();
                true
            }
            k if k.starts_with("pool.") => {
                // Every live pool key at once (the others, pool.mode among them, are not in
                // LIVE_KEYS and keep their value): the group is validated as one.
                let mode = next.pool.mode;
                let prepared = next.pool.max_prepared_statements;
                next.pool = fresh.pool.clone();
                next.pool.mode = mode;
                next.pool.max_prepared_statements = prepared;
                true
            }
            k if k.starts_with("slo.") => {
                let window = next.slo.window;
                next.slo = fresh.slo.clone();
                next.slo.window = window;
                true
            }
            _ => false,
        };
        if ok {
            applied.push(key.clone());
            if let (Some(slot), Some((_, v))) =
                (next.values.iter_mut().find(|(k, _)| k == key), fresh.values.iter().find(|(k, _)| k == key))
            {
                slot.1 = v.clone();
            }
        } else {
            not_applied.push(key.clone());
        }
    }
    ctx.metrics.set_slo(&next.slo);
    let resized = applied.iter().any(|k| k.starts_with("pool."));
    ctx.live.store(Arc::new(next));
    if resized {
        // Clients queued for a server connection look again under the new sizes.
        ctx.pools.resized();
    }
    ConfigOutcome::Changed { applied, restart_needed, not_applied }
}
