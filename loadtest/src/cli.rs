//! Command line: clap derive for the flags, then `Args::resolve` turns them into a checked
//! `RunPlan` so every usage mistake surfaces before a single connection is made (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::class::{Class, Targets};
use crate::error::Error;
use crate::scenario::ScenarioKind;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "citus-loadtest",
    version,
    about = "Runs latency-class scenarios against several PostgreSQL/Citus targets (e.g. the proxy and \
             the coordinator directly), interleaved, and exits 1 when a class misses its target.",
    after_help = "Scenarios: setup, point_select, aggregation, count, vector_search, insert_10k, copy_10k, \
                  mixed, cached, shard_creation, worker_registration, all.\n\
                  Classes: single_shard_query, multi_shard_aggregation, count, vector_search, bulk_insert, \
                  shard_creation, worker_registration.\n\
                  Exit status: 0 every class met its target, 1 some class missed it, 2 usage or connection error."
)]
pub struct Args {
    /// A target as NAME=URL (repeatable), e.g. proxy=postgres://u@127.0.0.1:6432/citus.
    #[arg(long = "target", value_name = "NAME=URL", required = true)]
    pub targets: Vec<String>,

    /// Scenario to run (repeatable, in order); `all` (the default) is setup plus every measured scenario.
    #[arg(long = "scenario", value_name = "NAME", default_value = "all")]
    pub scenarios: Vec<String>,

    /// Concurrent connections per target.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,

    /// Measured seconds per target per scenario (default 10 when --iterations is not given).
    #[arg(long, value_name = "S", conflicts_with = "iterations")]
    pub duration: Option<f64>,

    /// Measured operations per target per scenario, shared by its clients.
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,

    /// Unrecorded seconds per target per scenario before measuring.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub warmup: f64,

    /// Open-loop schedule: operations per second per target (latency counts from the scheduled start).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// How many alternating slices each target's measured run is cut into.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub slices: u32,

    /// The percentile judged against the targets: 0.99 (or 99) for p99.
    #[arg(long, default_value_t = 0.99)]
    pub percentile: f64,

    /// Override a class target in milliseconds, CLASS=MS (repeatable).
    #[arg(long = "target-ms", value_name = "CLASS=MS")]
    pub target_ms: Vec<String>,

    /// Fraction of failed operations a class tolerates before it fails (default: none).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub max_error_rate: f64,

    /// Read a proxy's /slo after the run, NAME=http://host:port/slo; NAME is the target it fronts.
    #[arg(long = "slo-url", value_name = "NAME=URL")]
    pub slo_urls: Vec<String>,

    /// Write report.json and report.html into this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    /// Multiply the demo data sizes created by `setup`.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,

    /// The target other targets are compared with in the ratio column.
    #[arg(long, default_value = "direct")]
    pub baseline: String,

    /// Seconds before a single operation counts as failed.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub op_timeout: f64,

    /// worker_registration adds (then removes) this new worker instead of re-registering an existing one.
    #[arg(long, value_name = "HOST:PORT")]
    pub register_worker: Option<String>,

    /// No live progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Amount {
    Iterations(u64),
    Duration(Duration),
}

#[derive(Clone, Debug)]
pub struct NamedUrl {
    pub name: String,
    pub url: String,
}

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub targets: Vec<NamedUrl>,
    pub setup: bool,
    pub scenarios: Vec<ScenarioKind>,
    pub clients: usize,
    pub amount: Amount,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub slices: u32,
    pub targets_ms: Targets,
    pub max_error_rate: f64,
    pub slo_urls: Vec<NamedUrl>,
    pub report_dir: Option<PathBuf>,
    pub scale: f64,
    pub baseline: String,
    pub op_timeout: Duration,
    pub register_worker: Option<(String, u16)>,
    pub progress: bool,
}

impl Args {
    pub fn resolve(&self) -> Result<RunPlan, Error> {
        let targets = self.targets.iter().map(|t| split_named(t, "--target")).collect::<Result<Vec<_>, _>>()?;
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].iter().any(|o| o.name == t.name) {
                return Err(usage(format!("--target name `{}` is given twice", t.name)));
            }
        }
        let (setup, scenarios) = parse_scenarios(&self.scenarios)?;
        let slo_urls = self.slo_urls.iter().map(|s| split_named(s, "--slo-url")).collect::<Result<Vec<_>, _>>()?;
        for s in &slo_urls {
            if !targets.iter().any(|t| t.name == s.name) {
                return Err(usage(format!("--slo-url {}: no --target is named `{}`", s.url, s.name)));
            }
            if !s.url.starts_with("http://") {
                return Err(usage(format!("--slo-url {}: only http:// URLs are supported", s.url)));
            }
        }
        let percentile = if self.percentile > 1.0 { self.percentile / 100.0 } else { self.percentile };
        if !(percentile > 0.0 && percentile <= 1.0) {
            return Err(usage(format!("--percentile {} is not in (0, 1] (or (0, 100])", self.percentile)));
        }
        let overrides = self.target_ms.iter().map(|s| parse_target_ms(s)).collect::<Result<Vec<_>, _>>()?;
        let amount = match (self.iterations, self.duration) {
            (Some(0), _) => return Err(usage("--iterations must be at least 1".into())),
            (Some(n), _) => Amount::Iterations(n),
            (None, Some(d)) => Amount::Duration(seconds("--duration", d)?),
            (None, None) => Amount::Duration(Duration::from_secs(10)),
        };
        if self.clients == 0 {
            return Err(usage("--clients must be at least 1".into()));
        }
        if self.slices == 0 {
            return Err(usage("--slices must be at least 1".into()));
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(usage(format!("--rate {r} must be a positive number")));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(usage(format!("--scale {} must be a positive number", self.scale)));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(usage(format!("--max-error-rate {} is not in [0, 1]", self.max_error_rate)));
        }
        let register_worker = match &self.register_worker {
            None => None,
            Some(hp) => {
                let (h, p) = hp.rsplit_once(':').ok_or_else(|| usage(format!("--register-worker {hp}: expected HOST:PORT")))?;
                let port = p.parse::<u16>().map_err(|_| usage(format!("--register-worker {hp}: bad port")))?;
                Some((h.to_string(), port))
            }
        };
        Ok(RunPlan {
            targets,
            setup,
            scenarios,
            clients: self.clients,
            amount,
            warmup: seconds_or_zero("--warmup", self.warmup)?,
            rate: self.rate,
            slices: self.slices,
            targets_ms: Targets::new(percentile, &overrides),
            max_error_rate: self.max_error_rate,
            slo_urls,
            report_dir: self.report.clone(),
            scale: self.scale,
            baseline: self.baseline.clone(),
            op_timeout: seconds("--op-timeout", self.op_timeout)?,
            register_worker,
            progress: !self.no_progress,
        })
    }
}

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

fn split_named(s: &str, flag: &str) -> Result<NamedUrl, Error> {
    match s.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() && !name.contains(char::is_whitespace) => {
            Ok(NamedUrl { name: name.to_string(), url: url.to_string() })
        }
        _ => Err(usage(format!("{flag} {s}: expected NAME=URL"))),
    }
}

fn parse_scenarios(names: &[String]) -> Result<(bool, Vec<ScenarioKind>), Error> {
    let mut setup = false;
    let mut out: Vec<ScenarioKind> = Vec::new();
    for name in names {
        let expanded: Vec<ScenarioKind> = match name.as_str() {
            "setup" => {
                setup = true;
                continue;
            }
            "all" => {
                setup = true;
                ScenarioKind::ALL.to_vec()
            }
            other => vec![ScenarioKind::parse(other)
                .ok_or_else(|| usage(format!("--scenario {other}: unknown; known: setup, {}, all", ScenarioKind::names().join(", "))))?],
        };
        for k in expanded {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    Ok((setup, out))
}

fn parse_target_ms(s: &str) -> Result<(Class, f64), Error> {
    let (c, ms) = s.split_once('=').ok_or_else(|| usage(format!("--target-ms {s}: expected CLASS=MS")))?;
    let class = Class::parse(c).ok_or_else(|| usage(format!("--target-ms {s}: unknown class `{c}`")))?;
    let ms: f64 = ms.parse().map_err(|_| usage(format!("--target-ms {s}: `{ms}` is not a number")))?;
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(usage(format!("--target-ms {s}: must be zero or more milliseconds")));
    }
    Ok((class, ms))
}

fn seconds(flag: &str, v: f64) -> Result<Duration, Error> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(usage(format!("{flag} {v} must be a positive number of seconds")))
    }
}

fn seconds_or_zero(flag: &str, v: f64) -> Result<Duration, Error> {
    if v == 0.0 {
        Ok(Duration::ZERO)
    } else {
        seconds(flag, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["citus-loadtest", "--target", "proxy=postgres://a@h/db", "--scenario", "count"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).expect("parse")
    }

    #[test]
    fn resolves_defaults_and_overrides() {
        let plan = args(&["--target-ms", "count=12.5", "--percentile", "99.9"]).resolve().expect("resolve");
        assert_eq!(plan.targets_ms.target_ms(Class::Count), Some(12.5));
        assert!((plan.targets_ms.percentile - 0.999).abs() < 1e-12);
        assert_eq!(plan.amount, Amount::Duration(Duration::from_secs(10)));
        assert!(!plan.setup);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(args(&["--target-ms", "nope=1"]).resolve().is_err());
        assert!(args(&["--slo-url", "direct=http://x/slo"]).resolve().is_err());
        assert!(args(&["--target", "proxy=postgres://b@h/db"]).resolve().is_err());
        assert!(args(&["--scenario", "bogus"]).resolve().is_err());
        let all = args(&["--scenario", "all"]).resolve().expect("all");
        assert!(all.setup && all.scenarios.len() == ScenarioKind::ALL.len());
    }

    #[test]
    fn without_scenario_runs_all() {
        let plan = Args::try_parse_from(["citus-loadtest", "--target", "proxy=postgres://a@h/db"])
            .expect("--scenario is optional")
            .resolve()
            .expect("resolve");
        assert!(plan.setup && plan.scenarios.len() == ScenarioKind::ALL.len());
        // Naming scenarios replaces the default rather than adding to it.
        let one = args(&[]).resolve().expect("count alone");
        assert_eq!(one.scenarios.len(), 1);
        assert!(!one.setup);
    }
}
