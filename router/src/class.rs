//! Latency-target classes of statements.

use crate::analysis::functions::{is_shard_creation, is_worker_registration};
use crate::analysis::{StatementInfo, StatementKind};
use crate::route::Route;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
    /// Stable snake_case label (metrics).
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
