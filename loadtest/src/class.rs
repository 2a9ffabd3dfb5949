//! The proxy's latency classes (docs/metrics.md) and their SLO targets. The names here must match
//! the proxy's `class` label exactly, so a load-test row and a `/slo` row line up by name.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    pub fn name(self) -> &'static str {
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

    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The default targets; `other` has none and never fails.
    pub fn default_target_ms(self) -> Option<f64> {
        match self {
            Class::SingleShardQuery => Some(100.0),
            Class::MultiShardAggregation => Some(500.0),
            Class::Count => Some(1_000.0),
            Class::VectorSearch => Some(50.0),
            Class::BulkInsert => Some(5_000.0),
            Class::ShardCreation => Some(30_000.0),
            Class::WorkerRegistration => Some(10_000.0),
            Class::Other => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The targets a run is judged against: one percentile for all classes, one bound per class.
#[derive(Clone, Debug, Serialize)]
pub struct Targets {
    pub percentile: f64,
    pub ms: BTreeMap<Class, f64>,
}

impl Targets {
    pub fn new(percentile: f64, overrides: &[(Class, f64)]) -> Targets {
        let mut ms: BTreeMap<Class, f64> =
            Class::ALL.iter().filter_map(|c| c.default_target_ms().map(|t| (*c, t))).collect();
        for (class, value) in overrides {
            ms.insert(*class, *value);
        }
        Targets { percentile, ms }
    }

    pub fn target_ms(&self, class: Class) -> Option<f64> {
        self.ms.get(&class).copied()
    }

    /// "p99", "p99.9", "p50": the label used in table headings.
    pub fn label(&self) -> String {
        percentile_label(self.percentile)
    }
}

pub fn percentile_label(p: f64) -> String {
    let pct = p * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("p{}", pct.round() as u64)
    } else {
        format!("p{}", trim_float(pct))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_labels() {
        for c in Class::ALL {
            assert_eq!(Class::parse(c.name()), Some(c));
        }
        assert_eq!(percentile_label(0.99), "p99");
        assert_eq!(percentile_label(0.999), "p99.9");
        let t = Targets::new(0.99, &[(Class::Count, 7.0)]);
        assert_eq!(t.target_ms(Class::Count), Some(7.0));
        assert_eq!(t.target_ms(Class::Other), None);
        assert_eq!(serde_json::to_string(&Class::BulkInsert).unwrap(), "\"bulk_insert\"");
    }
}
