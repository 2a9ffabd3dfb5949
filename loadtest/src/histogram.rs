//! Latency recording: one HDR histogram (microseconds, 1 µs .. 60 s, 3 significant digits) per
//! scenario, class and target, plus the error count, and the summaries the reports print.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::class::Class;

pub const MAX_MICROS: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Latencies and failures of one class.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub hist: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder { hist: new_histogram(), errors: 0, first_error: None }
    }
}

impl Recorder {
    pub fn record(&mut self, result: &Result<Duration, String>) {
        match result {
            // Anything slower than the histogram's bound is kept at the bound, not dropped, so a
            // pathological operation still fails its class.
            Ok(d) => self.hist.saturating_record(micros(*d)),
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.clone());
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail; saturate defensively anyway.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                self.hist.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }
}

pub type ClassRecorders = BTreeMap<Class, Recorder>;

pub fn merge_into(into: &mut ClassRecorders, from: &ClassRecorders) {
    for (class, rec) in from {
        into.entry(*class).or_default().merge(rec);
    }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    pub percentile: f64,
    pub micros: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The value at the run's configured percentile, the one judged against the target.
    pub observed_us: u64,
    /// The percentile curve, 0 .. 99.999% on a log scale, for the HTML plots.
    pub curve: Vec<CurvePoint>,
}

pub fn summarize(h: &Histogram<u64>, percentile: f64) -> Summary {
    let empty = h.is_empty();
    let q = |p: f64| if empty { 0 } else { h.value_at_quantile(p) };
    Summary {
        count: h.len(),
        min_us: if empty { 0 } else { h.min() },
        mean_us: if empty { 0.0 } else { h.mean() },
        p50_us: q(0.50),
        p90_us: q(0.90),
        p95_us: q(0.95),
        p99_us: q(0.99),
        p999_us: q(0.999),
        max_us: if empty { 0 } else { h.max() },
        observed_us: q(percentile),
        curve: if empty { Vec::new() } else { curve(h) },
    }
}

/// Points at 1 - 10^(-k/10), k = 0..=50: evenly spaced on the "nines" axis the plots use.
fn curve(h: &Histogram<u64>) -> Vec<CurvePoint> {
    (0..=50)
        .map(|k| {
            let percentile = 1.0 - 10f64.powf(-(k as f64) / 10.0);
            CurvePoint { percentile, micros: h.value_at_quantile(percentile) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merges_and_summarizes() {
        let mut a = Recorder::default();
        for ms in 1..=100u64 {
            a.record(&Ok(Duration::from_millis(ms)));
        }
        a.record(&Err("boom".into()));
        let mut b = Recorder::default();
        b.record(&Ok(Duration::from_secs(3600)));
        a.merge(&b);
        assert_eq!(a.count(), 101);
        assert_eq!(a.errors, 1);
        let s = summarize(&a.hist, 0.5);
        assert!((50_000..=51_100).contains(&s.observed_us), "{}", s.observed_us);
        assert!(s.max_us >= MAX_MICROS - MAX_MICROS / 500);
        assert_eq!(s.curve.len(), 51);
        assert_eq!(summarize(&new_histogram(), 0.99).count, 0);
    }
}
