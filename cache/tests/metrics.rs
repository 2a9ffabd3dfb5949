//! The cache records exactly the metric names of docs/metrics.md.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citus_proxy_cache::*;
use common::{config, parts, read, read_through};
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, Key as MKey, KeyName, Metadata, Recorder, SharedString, Unit};

#[derive(Default)]
struct Capture {
    values: Mutex<BTreeMap<String, Arc<Value>>>,
}

#[derive(Default)]
struct Value(AtomicU64);

impl CounterFn for Value {
    fn increment(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn absolute(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

impl GaugeFn for Value {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, v: f64) {
        self.0.store(v as u64, Ordering::Relaxed);
    }
}

impl Capture {
    fn slot(&self, key: &MKey) -> Arc<Value> {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.values.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_default().clone()
    }
    fn get(&self, name: &str) -> u64 {
        self.values.lock().unwrap_or_else(|p| p.into_inner()).get(name).map_or(0, |v| v.0.load(Ordering::Relaxed))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &MKey, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, key: &MKey, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }
    fn register_histogram(&self, _: &MKey, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn records_the_documented_metrics() {
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let cache = common::cache(&CacheConfig { memory_max_bytes: 2000, ..config(None, "metrics") });
            let p = parts("SELECT 1 FROM users");
            read_through(&cache, &read(None), &p, || "a".into()).await;
            read_through(&cache, &read(None), &p, || "b".into()).await;
            for i in 0..20 {
                read_through(&cache, &read(None), &parts(&format!("SELECT {i}")), || "c".repeat(100)).await;
            }
            let write = StatementFacts { read_only: false, ..read(None) };
            cache.decide(&write, &common::session("a"));
            let stats = cache.stats();
            assert_eq!(stats.memory_bytes as u64, capture.get("citus_proxy_cache_bytes{tier=memory}"));
            cache.store(&Key::derive(&p, &Snapshot::new(1, vec![])), Entry::new(bytes::Bytes::from_static(b"junk"), Duration::from_secs(1)))
                .await
                .expect_err("malformed");
        });
    });
    assert_eq!(capture.get("citus_proxy_cache_hits_total{tier=memory}"), 1);
    assert_eq!(capture.get("citus_proxy_cache_misses_total{}"), 21);
    assert_eq!(capture.get("citus_proxy_cache_stores_total{tier=memory}"), 21);
    assert!(capture.get("citus_proxy_cache_evictions_total{tier=memory}") > 0);
    assert_eq!(capture.get("citus_proxy_cache_bypass_total{reason=write}"), 1);
    assert_eq!(capture.get("citus_proxy_cache_bypass_total{reason=unsupported_response}"), 1);
}
