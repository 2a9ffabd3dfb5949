//! Per statement shape (literals stripped): how often it ran on each route and how long it took.
//! Bounded: once full, new shapes are counted under one overflow entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use hdrhistogram::Histogram;

use crate::metrics::labels::RouteKind;

pub struct ShapeStats {
    pub text: String,
    by_route: Vec<AtomicU64>,
    latency: Mutex<Histogram<u64>>,
}

impl ShapeStats {
    fn new(text: String) -> ShapeStats {
        ShapeStats {
            text,
            by_route: RouteKind::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            // One significant digit (10 %) keeps a shape's histogram near 2 KB: a thousand
            // shapes cost a few MB, not tens.
            latency: Mutex::new(one_digit_histogram()),
        }
    }
    pub fn count(&self, r: RouteKind) -> u64 {
        self.by_route.get(r.index()).map(|c| c.load(Ordering::Relaxed)).unwrap_or(0)
    }
    pub fn total(&self) -> u64 {
        self.by_route.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    /// Latency at quantile `q`, if any was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let h = self.latency.lock().ok()?;
        (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(q)))
    }
}

/// One row of SHOW ROUTES: text, per-route counts, total, p50, p99.
pub type TopShape = (String, Vec<(RouteKind, u64)>, u64, Option<Duration>, Option<Duration>);

/// Shape id 0 is the overflow bucket.
pub const OVERFLOW: u64 = 0;

pub struct Shapes {
    // ahash: this map is touched once per statement, where SipHash showed in profiles.
    map: DashMap<u64, ShapeStats, ahash::RandomState>,
    capacity: usize,
}

impl Shapes {
    pub fn new(capacity: usize) -> Shapes {
        Shapes { map: DashMap::with_hasher(ahash::RandomState::new()), capacity: capacity.max(1) }
    }

    /// Makes sure `id` is known, with `text` as its display form (first sight wins).
    pub fn register(&self, id: u64, text: impl FnOnce() -> String) -> u64 {
        if self.map.contains_key(&id) {
            return id;
        }
        if self.map.len() >= self.capacity {
            self.map.entry(OVERFLOW).or_insert_with(|| ShapeStats::new("(other shapes)".into()));
            return OVERFLOW;
        }
        self.map.entry(id).or_insert_with(|| ShapeStats::new(text()));
        id
    }

    pub fn record(&self, id: u64, route: RouteKind, elapsed: Duration) {
        if let Some(s) = self.map.get(&id) {
            if let Some(c) = s.by_route.get(route.index()) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut h) = s.latency.lock() {
                h.saturating_record((elapsed.as_micros() as u64).max(1));
            }
        }
    }

    /// The `n` most frequent shapes.
    pub fn top(&self, n: usize) -> Vec<TopShape> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|e| {
                let s = e.value();
                let routes = RouteKind::ALL.iter().map(|r| (*r, s.count(*r))).filter(|(_, c)| *c > 0).collect();
                (s.text.clone(), routes, s.total(), s.quantile(0.5), s.quantile(0.99))
            })
            .filter(|t| t.2 > 0)
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[allow(clippy::expect_used)] // constant bounds: it cannot fail
fn one_digit_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 1).unwrap_or_else(|_| Histogram::new(1).expect("1 sig fig"))
}
