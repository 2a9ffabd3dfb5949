//! Where a statement runs, in the words of the routing-examples TSV.

use crate::analysis::Analysis;
use crate::class::Class;
use serde::Serialize;
use std::sync::Arc;

/// One table's shard in a route; `shard_id` None when the value's type cannot be hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardRef {
    pub table: String,
    pub shard_id: Option<i64>,
    /// host:port of the active primaries holding it.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "kebab-case")]
pub enum Route {
    /// One task: every table's shard is listed (co-located joins list one shard per table).
    SingleShard { shards: Vec<ShardRef>, node: Option<String> },
    /// Fan-out; `tasks` when it is known (number of distinct shard indexes).
    MultiShard { shards: Vec<ShardRef>, tasks: Option<usize>, nodes: Vec<String> },
    /// Only reference tables.
    Reference { shards: Vec<ShardRef>, nodes: Vec<String> },
    /// A contradiction: one task that touches no shard.
    ZeroShard,
    /// Only plain PostgreSQL (or Citus-local) tables on the coordinator.
    Local { shards: Vec<ShardRef> },
    /// No user table at all (SELECT 1, catalog queries, UDF calls).
    Coordinator,
    /// Not plannable (BEGIN, SET, COPY, DDL, …).
    Utility,
    /// Citus refuses to plan it (the proxy still forwards it unchanged).
    Error { reason: String },
    /// The proxy could not decide; it says so rather than guess.
    Unknown { reason: String },
}

impl Route {
    pub fn word(&self) -> &'static str {
        match self {
            Route::SingleShard { .. } => "single-shard",
            Route::MultiShard { .. } => "multi-shard",
            Route::Reference { .. } => "reference",
            Route::ZeroShard => "zero-shard",
            Route::Local { .. } => "local",
            Route::Coordinator => "coordinator",
            Route::Utility => "utility",
            Route::Error { .. } => "error",
            Route::Unknown { .. } => "unknown",
        }
    }

    pub fn shards(&self) -> &[ShardRef] {
        match self {
            Route::SingleShard { shards, .. }
            | Route::MultiShard { shards, .. }
            | Route::Reference { shards, .. }
            | Route::Local { shards } => shards,
            _ => &[],
        }
    }

    /// Known shard ids, sorted and de-duplicated.
    pub fn shard_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.shards().iter().filter_map(|s| s.shard_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Nodes (host:port) the statement runs on.
    pub fn nodes(&self) -> Vec<String> {
        match self {
            Route::SingleShard { node, .. } => node.iter().cloned().collect(),
            Route::MultiShard { nodes, .. } | Route::Reference { nodes, .. } => nodes.clone(),
            _ => Vec::new(),
        }
    }
}

/// The router's answer for one Query / Bind.
#[derive(Debug, Clone)]
pub struct Decision {
    /// For a text with several statements: the common route, else `Unknown` (see `statements`).
    pub route: Route,
    pub class: Class,
    pub analysis: Arc<Analysis>,
    /// Why, for people (`users.user_id = 42 → hash 1509752520 → shard 102035 on …`).
    pub reason: String,
    /// One route per statement when the text has several (empty for a single statement).
    pub statements: Vec<Route>,
}
