//! Runs one scenario against every target, interleaved.
//!
//! Interleaving: each target's measured run is cut into `slices` equal parts (iterations or
//! time). Slice k of every target runs before slice k+1 of any, and the order of the targets
//! rotates from one round to the next (A B, B A, A B, ...). Only one target is under load at a
//! time, so the targets never compete with each other, and a burst of machine noise (another
//! build, autovacuum, a checkpoint) lands on all of them alike instead of on whichever ran last.
//! Warm-up, when asked for, is one unrecorded round in the same rotation before the first slice.
//!
//! Within a slice, `clients` connections run operations: back to back (closed loop), or, with
//! `--rate`, from a shared open-loop schedule where each operation's latency counts from its
//! scheduled start, so a stall shows up as latency instead of as fewer operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_postgres::Client;

use crate::cli::Amount;
use crate::histogram::{merge_into, ClassRecorders};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::scenario::{Outcome, PrepareCtx, PrepareError, Prepared, ScenarioKind};
use crate::target::Connected;

#[derive(Clone, Debug)]
pub struct Settings {
    pub clients: usize,
    pub amount: Amount,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub slices: u32,
    pub op_timeout: Duration,
    pub register_worker: Option<(String, u16)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Ran,
    Skipped(String),
    Failed(String),
}

/// One scenario on one target.
#[derive(Debug)]
pub struct ScenarioRun {
    pub scenario: ScenarioKind,
    pub target: String,
    pub status: Status,
    pub classes: ClassRecorders,
    /// Wall time of the measured slices, the denominator of throughput.
    pub measured: Duration,
    pub connection_lost: bool,
}

struct Lane {
    client: Arc<Client>,
    prepared: Arc<Prepared>,
}

/// Slices per target, for the progress bar's total.
pub fn units_per_target(s: &Settings) -> u64 {
    u64::from(s.slices) + u64::from(!s.warmup.is_zero())
}

pub async fn run_scenario(kind: ScenarioKind, targets: &[Connected], settings: &Settings, progress: &Progress) -> Vec<ScenarioRun> {
    let mut runs = Vec::new();
    let mut lanes: Vec<Vec<Lane>> = Vec::new();
    for t in targets {
        let (status, target_lanes) = prepare_lanes(kind, t, settings).await;
        if status != Status::Ran {
            progress.units_done(units_per_target(settings));
        }
        runs.push(ScenarioRun {
            scenario: kind,
            target: t.info.name.clone(),
            status,
            classes: ClassRecorders::new(),
            measured: Duration::ZERO,
            connection_lost: false,
        });
        lanes.push(target_lanes);
    }
    let active: Vec<usize> = (0..targets.len()).filter(|i| runs[*i].status == Status::Ran).collect();
    let seed = kind as u64 * 1_000_003;
    if !settings.warmup.is_zero() {
        for &i in &rotated(&active, 0) {
            progress.set_label(format!("{} → {} (warm-up)", kind.name(), targets[i].info.name));
            let slice = Slice { amount: Amount::Duration(settings.warmup), record: false, seed: seed ^ 0xAAAA };
            let r = run_slice(kind, &lanes[i], &slice, settings, progress).await;
            runs[i].connection_lost |= r.lost;
            progress.units_done(1);
        }
    }
    for round in 0..settings.slices {
        for &i in &rotated(&active, round as usize) {
            let amount = slice_amount(&settings.amount, settings.slices, round);
            if matches!(amount, Amount::Iterations(0)) || lanes[i].iter().all(|l| l.client.is_closed()) {
                progress.units_done(1);
                continue;
            }
            progress.set_label(format!("{} → {} (slice {}/{})", kind.name(), targets[i].info.name, round + 1, settings.slices));
            let slice = Slice { amount, record: true, seed: seed ^ (u64::from(round) << 20) ^ i as u64 };
            let r = run_slice(kind, &lanes[i], &slice, settings, progress).await;
            merge_into(&mut runs[i].classes, &r.classes);
            runs[i].measured += r.elapsed;
            runs[i].connection_lost |= r.lost;
            progress.units_done(1);
        }
    }
    runs
}

async fn prepare_lanes(kind: ScenarioKind, t: &Connected, settings: &Settings) -> (Status, Vec<Lane>) {
    let ctx = PrepareCtx { info: &t.info, register_worker: settings.register_worker.as_ref() };
    let wanted = kind.max_clients().map_or(settings.clients, |m| m.min(settings.clients));
    let mut lanes = Vec::new();
    for client in t.clients.iter().filter(|c| !c.is_closed()).take(wanted) {
        match Prepared::prepare(kind, client, &ctx).await {
            Ok(p) => lanes.push(Lane { client: client.clone(), prepared: Arc::new(p) }),
            Err(PrepareError::Skip(why)) => return (Status::Skipped(why), Vec::new()),
            Err(PrepareError::Failed(why)) => return (Status::Failed(why), Vec::new()),
        }
    }
    if lanes.is_empty() {
        return (Status::Failed("every connection to this target is closed".into()), lanes);
    }
    (Status::Ran, lanes)
}

/// `items` starting at position `round`, wrapping: the round-robin order of the targets.
fn rotated(items: &[usize], round: usize) -> Vec<usize> {
    if items.is_empty() {
        return Vec::new();
    }
    let k = round % items.len();
    items[k..].iter().chain(&items[..k]).copied().collect()
}

/// Slice `round` of `slices`: iterations spread so the slices add up exactly to the total.
fn slice_amount(total: &Amount, slices: u32, round: u32) -> Amount {
    match total {
        Amount::Iterations(n) => {
            let (base, extra) = (n / u64::from(slices), n % u64::from(slices));
            Amount::Iterations(base + u64::from(u64::from(round) < extra))
        }
        Amount::Duration(d) => Amount::Duration(*d / slices),
    }
}

struct Slice {
    amount: Amount,
    record: bool,
    seed: u64,
}

struct SliceResult {
    classes: ClassRecorders,
    elapsed: Duration,
    lost: bool,
}

/// Where a client gets its next operation from.
#[derive(Clone)]
enum Source {
    /// Closed loop: claim an iteration from the counter, or run until the deadline.
    Closed { claimed: Arc<AtomicU64>, limit: Option<u64>, deadline: Option<Instant> },
    /// Open loop: a scheduled start time from the dispatcher; the channel closes when it is done.
    Open(Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>),
}

impl Source {
    async fn next(&self) -> Option<Option<Instant>> {
        match self {
            Source::Closed { claimed, limit, deadline } => {
                let more = match (limit, deadline) {
                    (Some(n), _) => claimed.fetch_add(1, Ordering::Relaxed) < *n,
                    (None, Some(d)) => Instant::now() < *d,
                    (None, None) => false,
                };
                more.then_some(None)
            }
            Source::Open(rx) => rx.lock().await.recv().await.map(Some),
        }
    }
}

async fn run_slice(kind: ScenarioKind, lanes: &[Lane], slice: &Slice, s: &Settings, progress: &Progress) -> SliceResult {
    let started = Instant::now();
    let (limit, deadline) = match slice.amount {
        Amount::Iterations(n) => (Some(n), None),
        Amount::Duration(d) => (None, Some(started + d)),
    };
    let mut dispatcher = None;
    let source = match s.rate {
        None => Source::Closed { claimed: Arc::new(AtomicU64::new(0)), limit, deadline },
        Some(rate) => {
            let (tx, rx) = mpsc::unbounded_channel();
            dispatcher = Some(tokio::spawn(dispatch(tx, rate, limit, deadline)));
            Source::Open(Arc::new(Mutex::new(rx)))
        }
    };
    let mut set = JoinSet::new();
    for (n, lane) in lanes.iter().filter(|l| !l.client.is_closed()).enumerate() {
        let (client, prepared, source) = (lane.client.clone(), lane.prepared.clone(), source.clone());
        let (progress, record, timeout) = (progress.clone(), slice.record, s.op_timeout);
        let mut rng = Rng::new(slice.seed ^ ((n as u64 + 1) << 40));
        set.spawn(async move {
            let mut classes = ClassRecorders::new();
            while let Some(scheduled) = source.next().await {
                let begun = Instant::now();
                let outcome = match tokio::time::timeout(timeout, prepared.run(&client, &mut rng)).await {
                    Ok(o) => o,
                    Err(_) => Outcome::of(kind.classes()[0], Err(format!("timed out after {timeout:?}"))),
                };
                // Open loop: time spent waiting behind earlier operations is part of the latency.
                let queued = scheduled.map_or(Duration::ZERO, |t| begun.saturating_duration_since(t));
                let result = outcome.result.map(|d| d + queued);
                progress.op(result.is_err());
                if record {
                    classes.entry(outcome.class).or_default().record(&result);
                }
                if client.is_closed() {
                    return (classes, true);
                }
            }
            (classes, false)
        });
    }
    let mut out = SliceResult { classes: ClassRecorders::new(), elapsed: Duration::ZERO, lost: false };
    while let Some(joined) = set.join_next().await {
        // A panicking client task is a bug in a scenario; its operations are simply missing.
        if let Ok((classes, lost)) = joined {
            merge_into(&mut out.classes, &classes);
            out.lost |= lost;
        }
    }
    if let Some(d) = dispatcher {
        d.abort();
    }
    out.elapsed = started.elapsed();
    out
}

/// The open-loop schedule: one start time every 1/rate seconds. `Burst` makes a late dispatcher
/// catch up, and `tick` yields the instant each tick was due, not when it fired.
async fn dispatch(tx: mpsc::UnboundedSender<Instant>, rate: f64, limit: Option<u64>, deadline: Option<Instant>) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        let due = ticks.tick().await.into_std();
        if limit.is_some_and(|n| sent >= n) || deadline.is_some_and(|d| due >= d) {
            break;
        }
        if tx.send(due).is_err() {
            break;
        }
        sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_and_slices() {
        assert_eq!(rotated(&[0, 1], 0), vec![0, 1]);
        assert_eq!(rotated(&[0, 1], 1), vec![1, 0]);
        assert_eq!(rotated(&[0, 2, 5], 4), vec![2, 5, 0]);
        let total: u64 = (0..3)
            .map(|r| match slice_amount(&Amount::Iterations(10), 3, r) {
                Amount::Iterations(n) => n,
                Amount::Duration(_) => 0,
            })
            .sum();
        assert_eq!(total, 10);
    }
}
