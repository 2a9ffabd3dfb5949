//! The fixed label vocabularies (docs/metrics.md). Small enums so the hot path indexes
//! pre-registered handles instead of building label sets.

macro_rules! label_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum!(RouteLabel {
    SingleShard => "single-shard",
    MultiShard => "multi-shard",
    Reference => "reference",
    ZeroShard => "zero-shard",
    Local => "local",
    Coordinator => "coordinator",
    Utility => "utility",
    Error => "error",
    Unknown => "unknown",
});

label_enum!(ClassLabel {
    SingleShardQuery => "single_shard_query",
    MultiShardAggregation => "multi_shard_aggregation",
    Count => "count",
    VectorSearch => "vector_search",
    BulkInsert => "bulk_insert",
    ShardCreation => "shard_creation",
    WorkerRegistration => "worker_registration",
    Other => "other",
});

impl ClassLabel {
    /// The configured target of this class; `other` has none.
    pub fn target(self, slo: &crate::config::Slo) -> Option<std::time::Duration> {
        Some(match self {
            ClassLabel::SingleShardQuery => slo.single_shard_query,
            ClassLabel::MultiShardAggregation => slo.multi_shard_aggregation,
            ClassLabel::Count => slo.count,
            ClassLabel::VectorSearch => slo.vector_search,
            ClassLabel::BulkInsert => slo.bulk_insert,
            ClassLabel::ShardCreation => slo.shard_creation,
            ClassLabel::WorkerRegistration => slo.worker_registration,
            ClassLabel::Other => return None,
        })
    }
}
