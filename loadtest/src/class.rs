//! The SLO targets a run is judged against. The latency classes are the router's own vocabulary
//! (`citus_proxy_router::Class`, the proxy's `class` label), so a load-test row and a `/slo` row
//! line up by name.

use std::collections::BTreeMap;

use serde::Serialize;

pub use citus_proxy_router::Class;

/// The default target of a class in milliseconds (the proxy's `slo.<class>` default).
pub fn default_target_ms(class: Class) -> Option<f64> {
    class.default_target_ms().map(|ms| ms as f64)
}

/// The targets a run is judged against: one percentile for all classes, one bound per class.
#[derive(Clone, Debug, Serialize)]
pub struct Targets {
    pub percentile: f64,
    pub ms: BTreeMap<Class, f64>,
}

impl Targets {
    pub fn new(percentile: f64, overrides: &[(Class, f64)]) -> Targets {
        let mut ms: BTreeMap<Class, f64> = Class::ALL.iter().filter_map(|c| default_target_ms(*c).map(|t| (*c, t))).collect();
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
            assert_eq!(Class::parse(c.as_str()), Some(c));
        }
        assert_eq!(percentile_label(0.99), "p99");
        assert_eq!(percentile_label(0.999), "p99.9");
        let t = Targets::new(0.99, &[(Class::Count, 7.0)]);
        assert_eq!(t.target_ms(Class::Count), Some(7.0));
        assert_eq!(t.target_ms(Class::Other), None);
        assert_eq!(serde_json::to_string(&Class::BulkInsert).unwrap(), "\"bulk_insert\"");
    }
}
