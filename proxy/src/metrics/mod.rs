//! Prometheus metrics, recorded through handles registered once on this proxy's own recorder
//! (no global state: two proxies in one process keep separate counts), and the SLO view.

pub mod cache;
mod help;
pub mod http;
pub mod labels;
pub mod process;
pub mod slo;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::config::Slo;
use crate::sessions::SessionRegistry;
use labels::{Class, RouteKind};
use slo::SloWindows;

/// Histogram buckets around the targets: sub-millisecond to 30 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Quantiles exported as `citus_proxy_slo_latency_seconds{quantile}` besides the configured one.
const QUANTILES: &[f64] = &[0.5, 0.95, 0.99];

/// SQLSTATE classes whose error counters exist from the start at 0, so a dashboard's rate is 0
/// rather than "No data": connection (08), authorization (28), rollback (40), syntax or access
/// (42), resources (53), operator intervention (57), internal (XX).
const ERROR_CLASSES: &[[u8; 2]] = &[*b"08", *b"28", *b"40", *b"42", *b"53", *b"57", *b"XX"];

/// A class with no latency target (in `targets`).
const NO_TARGET: u64 = u64::MAX;

static META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

struct RouteClass {
    total: Counter,
    duration: Histogram,
    /// Read back by the admin console (Prometheus handles cannot be read).
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

pub struct ProxyMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    by_route_class: Vec<RouteClass>,
    violations: Vec<Counter>,
    /// Per class, the target in microseconds (NO_TARGET: none); atomics so SIGHUP / RELOAD can
    /// change targets while statements are recorded.
    targets: Vec<AtomicU64>,
    target_gauges: Vec<Option<Gauge>>,
    /// The SLO percentile, as f64 bits (live like the targets).
    percentile: AtomicU64,
    pub windows: SloWindows,
    pub client_connections: Gauge,
    pub upstream_connections: Gauge,
    pub bytes_to_upstream: Counter,
    pub bytes_to_client: Counter,
    pub upstream_connect: Histogram,
    /// Time a client waited for a pooled server connection.
    pub pool_wait: Histogram,
    /// Pooled server connections opened.
    pub pool_opened: Counter,
    /// Checkouts of pooled server connections.
    pub pool_checkouts: Counter,
    errors: Mutex<Vec<([u8; 2], Counter)>>,
}

impl ProxyMetrics {
    pub fn new(slo: &Slo) -> Arc<ProxyMetrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        help::describe(&recorder);
        let reg = |name: &'static str, labels: Vec<Label>| Key::from_parts(name, labels);
        let mut by_route_class = Vec::with_capacity(RouteKind::ALL.len() * Class::ALL.len());
        for r in RouteKind::ALL {
            for c in Class::ALL {
                let l = || vec![Label::new("route", r.as_str()), Label::new("class", c.as_str())];
                by_route_class.push(RouteClass {
                    total: recorder.register_counter(&reg("citus_proxy_queries_total", l()), &META),
                    duration: recorder.register_histogram(&reg("citus_proxy_query_duration_seconds", l()), &META),
                    count: Default::default(),
                    micros: Default::default(),
                });
            }
        }
        let mut violations = Vec::new();
        let mut targets = Vec::new();
        let mut target_gauges = Vec::new();
        for c in Class::ALL {
            let l = vec![Label::new("class", c.as_str())];
            violations.push(recorder.register_counter(&reg("citus_proxy_slo_violations_total", l.clone()), &META));
            targets.push(AtomicU64::new(NO_TARGET));
            target_gauges.push(slo.target(c).map(|_| recorder.register_gauge(&reg("citus_proxy_slo_target_seconds", l), &META)));
        }
        let plain = |name: &'static str| reg(name, vec![]);
        recorder.register_gauge(&reg("citus_proxy_build_info", vec![Label::new("version", env!("CARGO_PKG_VERSION"))]), &META).set(1.0);
        // Failure counters exist at 0 from the start.
        recorder.register_counter(&plain("citus_proxy_metadata_refresh_errors_total"), &META).absolute(0);
        let errors = ERROR_CLASSES
            .iter()
            .map(|class| {
                let label = String::from_utf8_lossy(class).into_owned();
                let key = Key::from_parts("citus_proxy_errors_total", vec![Label::new("sqlstate_class", label)]);
                let c = recorder.register_counter(&key, &META);
                c.absolute(0);
                (*class, c)
            })
            .collect();
        let m = ProxyMetrics {
            client_connections: recorder.register_gauge(&plain("citus_proxy_client_connections"), &META),
            upstream_connections: recorder.register_gauge(&plain("citus_proxy_upstream_connections"), &META),
            bytes_to_upstream: recorder
                .register_counter(&reg("citus_proxy_bytes_total", vec![Label::new("direction", "to_upstream")]), &META),
            bytes_to_client: recorder.register_counter(&reg("citus_proxy_bytes_total", vec![Label::new("direction", "to_client")]), &META),
            upstream_connect: recorder.register_histogram(&plain("citus_proxy_upstream_connect_seconds"), &META),
            pool_wait: recorder.register_histogram(&plain("citus_proxy_pool_wait_seconds"), &META),
            pool_opened: recorder.register_counter(&plain("citus_proxy_pool_server_connections_opened_total"), &META),
            pool_checkouts: recorder.register_counter(&plain("citus_proxy_pool_checkouts_total"), &META),
            errors: Mutex::new(errors),
            by_route_class,
            violations,
            targets,
            target_gauges,
            percentile: AtomicU64::new(slo.percentile.to_bits()),
            windows: SloWindows::new(slo.window),
            handle,
            recorder,
        };
        m.set_slo(slo);
        Arc::new(m)
    }

    /// Applies the SLO percentile and targets (at start, and on SIGHUP / RELOAD). The window
    /// sizes the histograms and needs a restart.
    pub fn set_slo(&self, slo: &Slo) {
        self.percentile.store(slo.percentile.to_bits(), Ordering::Relaxed);
        for c in Class::ALL {
            let target = slo.target(c);
            if let Some(a) = self.targets.get(c.index()) {
                a.store(target.map_or(NO_TARGET, |t| t.as_micros().min(u128::from(NO_TARGET - 1)) as u64), Ordering::Relaxed);
            }
            if let (Some(Some(g)), Some(t)) = (self.target_gauges.get(c.index()), target) {
                g.set(t.as_secs_f64());
            }
        }
    }

    /// The latency target of `class`, if it has one.
    fn target(&self, class: Class) -> Option<Duration> {
        let us = self.targets.get(class.index())?.load(Ordering::Relaxed);
        (us != NO_TARGET).then(|| Duration::from_micros(us))
    }

    /// One finished statement.
    #[inline]
    pub fn record(&self, route: RouteKind, class: Class, elapsed: Duration) {
        let i = route.index() * Class::ALL.len() + class.index();
        if let Some(rc) = self.by_route_class.get(i) {
            rc.total.increment(1);
            rc.duration.record(elapsed.as_secs_f64());
            rc.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rc.micros.fetch_add(elapsed.as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(target) = self.target(class) {
            self.windows.record(class, elapsed);
            if elapsed > target {
                if let Some(v) = self.violations.get(class.index()) {
                    v.increment(1);
                }
            }
        }
    }

    /// An ErrorResponse from the coordinator, counted by SQLSTATE class.
    pub fn backend_error(&self, sqlstate: &[u8]) {
        let class = match sqlstate {
            [a, b, ..] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => [*a, *b],
            _ => *b"XX",
        };
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = errors.iter().find(|(k, _)| *k == class) {
            c.increment(1);
            return;
        }
        let label = String::from_utf8_lossy(&class).into_owned();
        let c =
            self.recorder.register_counter(&Key::from_parts("citus_proxy_errors_total", vec![Label::new("sqlstate_class", label)]), &META);
        c.increment(1);
        errors.push((class, c));
    }

    /// A gauge with labels, for values set outside the hot path (metadata, cluster shape).
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        let labels = labels.iter().map(|(k, v)| Label::new(*k, v.clone())).collect::<Vec<_>>();
        self.recorder.register_gauge(&Key::from_parts(name, labels), &META)
    }

    /// A counter with labels, for values copied in before a scrape.
    pub fn counter_with(&self, name: &'static str, labels: &[(&'static str, String)]) -> Counter {
        let labels = labels.iter().map(|(k, v)| Label::new(*k, v.clone())).collect::<Vec<_>>();
        self.recorder.register_counter(&Key::from_parts(name, labels), &META)
    }

    pub fn counter(&self, name: &'static str) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, Vec::<Label>::new()), &META)
    }

    /// The Prometheus text, with the computed gauges brought up to date first.
    pub fn render(&self, sessions: &SessionRegistry) -> String {
        let percentile = self.percentile();
        for c in Class::ALL {
            if self.target(c).is_none() {
                continue;
            }
            let h = self.windows.snapshot(c);
            let mut qs: Vec<f64> = QUANTILES.to_vec();
            if !qs.iter().any(|q| (q - percentile).abs() < 1e-9) {
                qs.push(percentile);
            }
            for q in qs {
                let g = self.gauge("citus_proxy_slo_latency_seconds", &[("class", c.as_str().to_string()), ("quantile", format!("{q}"))]);
                if h.is_empty() {
                    g.set(0.0);
                } else {
                    g.set(h.value_at_quantile(q) as f64 / 1e6);
                }
            }
        }
        self.gauge("citus_proxy_oldest_statement_seconds", &[]).set(sessions.oldest_statement().map(|d| d.as_secs_f64()).unwrap_or(0.0));
        let mut text = self.handle.render();
        process::render(&process::read(), &mut text);
        text
    }

    /// The SLO view as JSON (`GET /slo`): percentile per class against its target.
    pub fn slo_json(&self) -> serde_json::Value {
        let percentile = self.percentile();
        let classes: Vec<serde_json::Value> = Class::ALL
            .iter()
            .filter_map(|c| {
                let target = self.target(*c)?;
                let h = self.windows.snapshot(*c);
                let observed = (!h.is_empty()).then(|| h.value_at_quantile(percentile) as f64 / 1e6);
                Some(serde_json::json!({
                    "class": c.as_str(),
                    "target_seconds": target.as_secs_f64(),
                    "observed_seconds": observed,
                    "count": h.len(),
                    "violations": self.violations_in_window(&h, target),
                    "pass": observed.is_none_or(|o| o <= target.as_secs_f64()),
                }))
            })
            .collect();
        serde_json::json!({
            "percentile": percentile,
            "window_seconds": self.windows.window().as_secs_f64(),
            "classes": classes,
        })
    }

    fn violations_in_window(&self, h: &hdrhistogram::Histogram<u64>, target: Duration) -> u64 {
        let t = target.as_micros() as u64;
        h.iter_recorded().filter(|v| v.value_iterated_to() > t).map(|v| v.count_at_value()).sum()
    }

    /// Statements and their total time per (route, class) since start, for SHOW STATS.
    pub fn totals(&self) -> Vec<(RouteKind, Class, u64, Duration)> {
        let mut out = Vec::new();
        for r in RouteKind::ALL {
            for c in Class::ALL {
                let i = r.index() * Class::ALL.len() + c.index();
                if let Some(rc) = self.by_route_class.get(i) {
                    let n = rc.count.load(std::sync::atomic::Ordering::Relaxed);
                    if n > 0 {
                        let us = rc.micros.load(std::sync::atomic::Ordering::Relaxed);
                        out.push((r, c, n, Duration::from_micros(us)));
                    }
                }
            }
        }
        out
    }

    /// The SLO classes with targets: (class, target, observed at the percentile, count, violations in window).
    pub fn slo_rows(&self) -> Vec<(Class, Duration, Option<Duration>, u64, u64)> {
        let percentile = self.percentile();
        Class::ALL
            .iter()
            .filter_map(|c| {
                let target = self.target(*c)?;
                let h = self.windows.snapshot(*c);
                let observed = (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(percentile)));
                Some((*c, target, observed, h.len(), self.violations_in_window(&h, target)))
            })
            .collect()
    }

    pub fn percentile(&self) -> f64 {
        f64::from_bits(self.percentile.load(Ordering::Relaxed))
    }

    /// Drains histogram samples into their buckets; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
