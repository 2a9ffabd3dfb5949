//! The run's results as one serialisable value, and the verdicts: a row per (scenario, class,
//! target), a verdict per (class, target) over all scenarios that recorded into the class, and
//! the exit status derived from them. The three renderings read only this value.

pub mod html;
pub mod json;
pub mod terminal;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::class::{Class, Targets};
use crate::cli::Amount;
use crate::histogram::{merge_into, summarize, ClassRecorders, Recorder, Summary};
use crate::runner::{ScenarioRun, Settings, Status};
use crate::setup::SetupReport;
use crate::slo::SloView;
use crate::target::TargetInfo;

pub const EXIT_PASS: i32 = 0;
pub const EXIT_MISSED: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub started_unix: u64,
    pub settings: SettingsView,
    pub targets: Vec<TargetInfo>,
    pub setup: Vec<SetupReport>,
    pub results: Vec<ResultRow>,
    pub classes: Vec<ClassVerdict>,
    pub slo: Vec<SloView>,
    pub problems: Vec<String>,
    pub pass: bool,
    pub exit_code: i32,
}

#[derive(Clone, Debug, Serialize)]
pub struct SettingsView {
    pub clients: usize,
    pub iterations: Option<u64>,
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub rate: Option<f64>,
    pub slices: u32,
    pub percentile: f64,
    pub percentile_label: String,
    pub max_error_rate: f64,
    pub baseline: String,
    pub targets_ms: BTreeMap<Class, f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResultRow {
    pub scenario: String,
    pub class: Class,
    pub target: String,
    /// "ran", "skipped" or "failed".
    pub status: String,
    pub reason: Option<String>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub measured_s: f64,
    pub throughput_ops: f64,
    #[serde(flatten)]
    pub latency: Summary,
    pub target_ms: Option<f64>,
    /// None when not judged (skipped, failed, or a class without a target).
    pub pass: Option<bool>,
    /// This target's latency over the baseline target's, same scenario and class.
    pub ratio_p50: Option<f64>,
    pub ratio_observed: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassVerdict {
    pub target: String,
    pub class: Class,
    pub count: u64,
    pub errors: u64,
    pub observed_us: u64,
    pub target_ms: Option<f64>,
    pub pass: Option<bool>,
}

pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub targets_ms: &'a Targets,
    pub max_error_rate: f64,
    pub baseline: &'a str,
    pub targets: Vec<TargetInfo>,
    pub setup: Vec<SetupReport>,
    pub runs: &'a [ScenarioRun],
    pub slo: Vec<SloView>,
}

impl Report {
    pub fn build(inp: Inputs<'_>) -> Report {
        let t = inp.targets_ms;
        let judge = |rec: &Recorder, observed_us: u64, target_ms: Option<f64>| -> Option<bool> {
            let target_ms = target_ms?;
            let total = rec.count() + rec.errors;
            let errors_ok = total == 0 || rec.errors as f64 / total as f64 <= inp.max_error_rate;
            // "< target": a class with no completed operation has nothing that missed it.
            Some(errors_ok && (rec.count() == 0 || (observed_us as f64) < target_ms * 1000.0))
        };
        let mut problems = Vec::new();
        let mut results = Vec::new();
        let mut per_class: BTreeMap<(String, Class), ClassRecorders> = BTreeMap::new();
        for run in inp.runs {
            if let Status::Failed(why) = &run.status {
                problems.push(format!("target `{}`: scenario {}: {why}", run.target, run.scenario.name()));
            }
            if run.connection_lost {
                problems.push(format!("target `{}`: connection lost during scenario {}", run.target, run.scenario.name()));
            }
            for class in run.scenario.classes() {
                let rec = run.classes.get(class).cloned().unwrap_or_default();
                let latency = summarize(&rec.hist, t.percentile);
                let (status, reason) = match &run.status {
                    Status::Ran => ("ran", None),
                    Status::Skipped(w) => ("skipped", Some(w.clone())),
                    Status::Failed(w) => ("failed", Some(w.clone())),
                };
                let target_ms = t.target_ms(*class);
                let pass = if run.status == Status::Ran { judge(&rec, latency.observed_us, target_ms) } else { None };
                if run.status == Status::Ran {
                    let mut one = ClassRecorders::new();
                    one.insert(*class, rec.clone());
                    merge_into(per_class.entry((run.target.clone(), *class)).or_default(), &one);
                }
                let secs = run.measured.as_secs_f64();
                results.push(ResultRow {
                    scenario: run.scenario.name().to_string(),
                    class: *class,
                    target: run.target.clone(),
                    status: status.to_string(),
                    reason,
                    errors: rec.errors,
                    first_error: rec.first_error.clone(),
                    measured_s: secs,
                    throughput_ops: if secs > 0.0 { rec.count() as f64 / secs } else { 0.0 },
                    latency,
                    target_ms,
                    pass,
                    ratio_p50: None,
                    ratio_observed: None,
                });
            }
        }
        // Rows of one scenario and class next to each other, targets in their given order.
        let scenario_order: Vec<String> = inp.runs.iter().map(|r| r.scenario.name().to_string()).collect();
        let position = |name: &str| scenario_order.iter().position(|s| s == name).unwrap_or(usize::MAX);
        results.sort_by_key(|row| (position(&row.scenario), row.class));
        add_ratios(&mut results, inp.baseline);
        let mut classes = Vec::new();
        // Targets in the order given, classes in their fixed order.
        for target in &inp.targets {
            for class in Class::ALL {
                let Some(recs) = per_class.get(&(target.name.clone(), class)) else { continue };
                let rec = recs.get(&class).cloned().unwrap_or_default();
                let observed_us = summarize(&rec.hist, t.percentile).observed_us;
                let target_ms = t.target_ms(class);
                classes.push(ClassVerdict {
                    target: target.name.clone(),
                    class,
                    count: rec.count(),
                    errors: rec.errors,
                    observed_us,
                    target_ms,
                    pass: judge(&rec, observed_us, target_ms),
                });
            }
        }
        let missed = classes.iter().any(|c| c.pass == Some(false));
        let exit_code = if !problems.is_empty() {
            EXIT_ERROR
        } else if missed {
            EXIT_MISSED
        } else {
            EXIT_PASS
        };
        let s = inp.settings;
        Report {
            tool: "citus-loadtest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            settings: SettingsView {
                clients: s.clients,
                iterations: match s.amount {
                    Amount::Iterations(n) => Some(n),
                    Amount::Duration(_) => None,
                },
                duration_s: match s.amount {
                    Amount::Duration(d) => Some(d.as_secs_f64()),
                    Amount::Iterations(_) => None,
                },
                warmup_s: s.warmup.as_secs_f64(),
                rate: s.rate,
                slices: s.slices,
                percentile: t.percentile,
                percentile_label: t.label(),
                max_error_rate: inp.max_error_rate,
                baseline: inp.baseline.to_string(),
                targets_ms: t.ms.clone(),
            },
            targets: inp.targets,
            setup: inp.setup,
            results,
            classes,
            slo: inp.slo,
            pass: exit_code == EXIT_PASS,
            problems,
            exit_code,
        }
    }
}

fn add_ratios(rows: &mut [ResultRow], baseline: &str) {
    let base: BTreeMap<(String, Class), (u64, u64)> = rows
        .iter()
        .filter(|r| r.target == baseline && r.latency.count > 0)
        .map(|r| ((r.scenario.clone(), r.class), (r.latency.p50_us, r.latency.observed_us)))
        .collect();
    for r in rows.iter_mut().filter(|r| r.target != baseline && r.latency.count > 0) {
        if let Some((p50, observed)) = base.get(&(r.scenario.clone(), r.class)) {
            r.ratio_p50 = Some(r.latency.p50_us as f64 / (*p50).max(1) as f64);
            r.ratio_observed = Some(r.latency.observed_us as f64 / (*observed).max(1) as f64);
        }
    }
}

/// 850µs, 12.35ms, 1.20s: three significant-ish digits at every scale.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

pub fn fmt_ms(ms: f64) -> String {
    fmt_us((ms * 1000.0).round() as u64)
}

pub fn verdict(pass: Option<bool>, status: &str) -> &'static str {
    match (status, pass) {
        ("skipped", _) => "SKIP",
        ("failed", _) => "ERROR",
        (_, Some(true)) => "PASS",
        (_, Some(false)) => "FAIL",
        (_, None) => "-",
    }
}
