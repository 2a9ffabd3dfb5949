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
    /// The kind of route, without its details (the metric label).
    pub fn kind(&self) -> RouteKind {
        match self {
            Route::SingleShard { .. } => RouteKind::SingleShard,
            Route::MultiShard { .. } => RouteKind::MultiShard,
            Route::Reference { .. } => RouteKind::Reference,
            Route::ZeroShard => RouteKind::ZeroShard,
            Route::Local { .. } => RouteKind::Local,
            Route::Coordinator => RouteKind::Coordinator,
            Route::Utility => RouteKind::Utility,
            Route::Error { .. } => RouteKind::Error,
            Route::Unknown { .. } => RouteKind::Unknown,
        }
    }

    pub fn word(&self) -> &'static str {
        self.kind().as_str()
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

/// Where a statement runs, without the details: the one route vocabulary (the proxy's `route`
/// metric label, SHOW ROUTES, the NOTICE and `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    SingleShard,
    MultiShard,
    Reference,
    ZeroShard,
    Local,
    Coordinator,
    Utility,
    Error,
    Unknown,
}

impl RouteKind {
    /// Every kind, in label order (`index` is the position here).
    pub const ALL: [RouteKind; 9] = [
        RouteKind::SingleShard,
        RouteKind::MultiShard,
        RouteKind::Reference,
        RouteKind::ZeroShard,
        RouteKind::Local,
        RouteKind::Coordinator,
        RouteKind::Utility,
        RouteKind::Error,
        RouteKind::Unknown,
    ];

    /// Stable kebab-case label.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::SingleShard => "single-shard",
            RouteKind::MultiShard => "multi-shard",
            RouteKind::Reference => "reference",
            RouteKind::ZeroShard => "zero-shard",
            RouteKind::Local => "local",
            RouteKind::Coordinator => "coordinator",
            RouteKind::Utility => "utility",
            RouteKind::Error => "error",
            RouteKind::Unknown => "unknown",
        }
    }

    /// Position in [`RouteKind::ALL`], for arrays indexed by route.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind a label names.
    pub fn parse(label: &str) -> Option<RouteKind> {
        RouteKind::ALL.into_iter().find(|k| k.as_str() == label)
    }
}

impl std::fmt::Display for RouteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_serialized_tags_and_round_trip() {
        let routes = [
            Route::SingleShard { shards: vec![], node: None },
            Route::MultiShard { shards: vec![], tasks: None, nodes: vec![] },
            Route::Reference { shards: vec![], nodes: vec![] },
            Route::ZeroShard,
            Route::Local { shards: vec![] },
            Route::Coordinator,
            Route::Utility,
            Route::Error { reason: String::new() },
            Route::Unknown { reason: String::new() },
        ];
        for (i, r) in routes.iter().enumerate() {
            let k = r.kind();
            assert_eq!(k, RouteKind::ALL[i]);
            assert_eq!(k.index(), i);
            assert_eq!(RouteKind::parse(k.as_str()), Some(k));
            let tag = serde_json::to_value(r).unwrap()["route"].as_str().unwrap().to_string();
            assert_eq!(tag, k.as_str(), "the JSON tag and the label are one word");
        }
    }
}
