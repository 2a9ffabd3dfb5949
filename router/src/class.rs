//! Latency-target classes of statements: the one vocabulary the proxy's `class` metric label,
//! its `slo.*` configuration keys and the load tester's report rows all use.

use crate::analysis::functions::{is_shard_creation, is_worker_registration};
use crate::analysis::{StatementInfo, StatementKind};
use crate::route::Route;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    SingleShardQuery,
    MultiShardAggregation,
    Count,
    VectorSearch,
    BulkInsert,
    ShardCreation,
    WorkerRegistration,
    Other,
}

impl Class {
    /// Every class, in label order (`index` is the position here).
    pub const ALL: [Class; 8] = [
        Class::SingleShardQuery,
        Class::MultiShardAggregation,
        Class::Count,
        Class::VectorSearch,
        Class::BulkInsert,
        Class::ShardCreation,
        Class::WorkerRegistration,
        Class::Other,
    ];

    /// Position in [`Class::ALL`], for arrays indexed by class.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class a label names.
    pub fn parse(label: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == label)
    }

    /// The latency target a class has unless configured otherwise (the `slo.<class>` key's
    /// default, and the load tester's); `other` has none.
    pub fn default_target_ms(self) -> Option<u64> {
        match self {
            Class::SingleShardQuery => Some(100),
            Class::MultiShardAggregation => Some(500),
            Class::Count => Some(1_000),
            Class::VectorSearch => Some(50),
            Class::BulkInsert => Some(5_000),
            Class::ShardCreation => Some(30_000),
            Class::WorkerRegistration => Some(10_000),
            Class::Other => None,
        }
    }

    /// Stable snake_case label (metrics, `slo.*` keys, load-test reports).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::SingleShardQuery => "single_shard_query",
            Class::MultiShardAggregation => "multi_shard_aggregation",
            Class::Count => "count",
            Class::VectorSearch => "vector_search",
            Class::BulkInsert => "bulk_insert",
            Class::ShardCreation => "shard_creation",
            Class::WorkerRegistration => "worker_registration",
            Class::Other => "other",
        }
    }

    pub fn of(info: &StatementInfo, route: &Route, bulk_insert_rows: usize) -> Class {
        let f = &info.facts;
        if info.functions.iter().any(|x| is_worker_registration(x)) {
            Class::WorkerRegistration
        } else if info.functions.iter().any(|x| is_shard_creation(x)) {
            Class::ShardCreation
        } else if f.vector_search {
            Class::VectorSearch
        } else if info.kind == StatementKind::CopyFrom || (f.insert_rows > 1 && f.insert_rows >= bulk_insert_rows) {
            Class::BulkInsert
        } else if info.kind == StatementKind::Read && f.only_count && !f.group_by {
            Class::Count
        } else if (f.has_aggregate || f.group_by) && matches!(route, Route::MultiShard { .. }) {
            Class::MultiShardAggregation
        } else if matches!(route, Route::SingleShard { .. }) {
            Class::SingleShardQuery
        } else {
            Class::Other
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Class;

    #[test]
    fn labels_round_trip_in_index_order() {
        for (i, c) in Class::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Class::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
        }
        assert_eq!(Class::parse("nope"), None);
    }
}
