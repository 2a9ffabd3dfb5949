//! citus-loadtest: drives the demo schema's latency classes against one or more targets (the
//! proxy and the coordinator it fronts), interleaved, and judges each class against its target.
//! It stands alone: it speaks to the targets over the wire like any client and shares no code
//! with the proxy, so it measures what clients see.
// A load-testing client: its reports index tables it built itself, and a bad answer ends the run with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod class;
pub mod cli;
pub mod error;
pub mod histogram;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod setup;
pub mod slo;
pub mod target;

use crate::cli::RunPlan;
use crate::error::Error;
use crate::progress::Progress;
use crate::report::{Inputs, Report};
use crate::runner::Settings;
use crate::target::Connected;

impl RunPlan {
    pub fn settings(&self) -> Settings {
        Settings {
            clients: self.clients,
            amount: self.amount.clone(),
            warmup: self.warmup,
            rate: self.rate,
            slices: self.slices,
            op_timeout: self.op_timeout,
            register_worker: self.register_worker.clone(),
        }
    }
}

/// The whole run; the result is the exit status (0 met, 1 missed), errors are exit status 2.
pub async fn run(plan: RunPlan) -> Result<i32, Error> {
    let progress = Progress::new(plan.progress);
    let mut targets = Vec::new();
    for t in &plan.targets {
        progress.note(&format!("connecting to `{}` ({} connections)", t.name, plan.clients + 1));
        targets.push(Connected::open(t, plan.clients).await?);
    }
    for t in &targets {
        let i = &t.info;
        progress.note(&format!(
            "`{}`: PostgreSQL {}, {}, pgvector {}",
            i.name,
            i.server_version,
            if i.citus { "Citus coordinator" } else { "no Citus" },
            if i.pgvector_available { "available" } else { "not available" }
        ));
    }
    let mut setups = Vec::new();
    if plan.setup {
        // One target after the other: two targets are often the same database behind and
        // without the proxy, and the second then finds everything in place.
        for t in &targets {
            let r = setup::ensure_schema(&t.admin, &t.info, plan.scale)
                .await
                .map_err(|message| Error::Setup { target: t.info.name.clone(), message })?;
            progress.note(&format!(
                "setup `{}`: created [{}], already there [{}], embedding {:?}, {:.0} ms",
                r.target,
                r.created.join(", "),
                r.existing.join(", "),
                r.vector,
                r.elapsed_ms
            ));
            setups.push(r);
        }
    }
    let settings = plan.settings();
    let mut runs = Vec::new();
    progress.start(plan.scenarios.len() as u64 * targets.len() as u64 * runner::units_per_target(&settings));
    for kind in &plan.scenarios {
        progress.note(&format!("scenario {}", kind.name()));
        runs.extend(runner::run_scenario(*kind, &targets, &settings, &progress).await);
    }
    progress.finish();
    let mut slo = Vec::new();
    for s in &plan.slo_urls {
        slo.push(slo::read(&s.name, &s.url).await);
    }
    let report = Report::build(Inputs {
        settings: &settings,
        targets_ms: &plan.targets_ms,
        max_error_rate: plan.max_error_rate,
        baseline: &plan.baseline,
        targets: targets.iter().map(|t| t.info.clone()).collect(),
        setup: setups,
        runs: &runs,
        slo,
    });
    print!("{}", report::terminal::render(&report));
    if let Some(dir) = &plan.report_dir {
        let json = report::json::write(dir, &report)?;
        let html = report::html::write(dir, &report)?;
        println!("report: {} and {}", json.display(), html.display());
    }
    Ok(report.exit_code)
}
