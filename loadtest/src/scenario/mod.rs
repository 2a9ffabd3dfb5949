//! Scenarios: one file each. A scenario prepares its statements once per connection and then runs
//! one operation at a time, timing only the statement its class is about (set-up and clean-up
//! around it, like building 10k rows or dropping a table, stay outside the measurement).

mod aggregation;
mod cached;
mod copy_10k;
mod count;
mod insert_10k;
mod mixed;
mod point_select;
mod shard_creation;
mod vector_search;
mod worker_registration;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::class::Class;
use crate::error::describe_pg;
use crate::rng::Rng;
use crate::target::TargetInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    PointSelect,
    Aggregation,
    Count,
    VectorSearch,
    Insert10k,
    Copy10k,
    Mixed,
    Cached,
    ShardCreation,
    WorkerRegistration,
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 10] = [
        ScenarioKind::PointSelect,
        ScenarioKind::Aggregation,
        ScenarioKind::Count,
        ScenarioKind::VectorSearch,
        ScenarioKind::Insert10k,
        ScenarioKind::Copy10k,
        ScenarioKind::Mixed,
        ScenarioKind::Cached,
        ScenarioKind::ShardCreation,
        ScenarioKind::WorkerRegistration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::PointSelect => "point_select",
            ScenarioKind::Aggregation => "aggregation",
            ScenarioKind::Count => "count",
            ScenarioKind::VectorSearch => "vector_search",
            ScenarioKind::Insert10k => "insert_10k",
            ScenarioKind::Copy10k => "copy_10k",
            ScenarioKind::Mixed => "mixed",
            ScenarioKind::Cached => "cached",
            ScenarioKind::ShardCreation => "shard_creation",
            ScenarioKind::WorkerRegistration => "worker_registration",
        }
    }

    pub fn parse(s: &str) -> Option<ScenarioKind> {
        ScenarioKind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn names() -> Vec<&'static str> {
        ScenarioKind::ALL.iter().map(|k| k.name()).collect()
    }

    /// The classes this scenario records into (mixed and cached span several).
    pub fn classes(self) -> &'static [Class] {
        match self {
            ScenarioKind::PointSelect => &[Class::SingleShardQuery],
            ScenarioKind::Aggregation => &[Class::MultiShardAggregation],
            ScenarioKind::Count => &[Class::Count],
            ScenarioKind::VectorSearch => &[Class::VectorSearch],
            ScenarioKind::Insert10k | ScenarioKind::Copy10k => &[Class::BulkInsert],
            ScenarioKind::Mixed => &[Class::SingleShardQuery, Class::MultiShardAggregation],
            ScenarioKind::Cached => &[Class::SingleShardQuery, Class::Count],
            ScenarioKind::ShardCreation => &[Class::ShardCreation],
            ScenarioKind::WorkerRegistration => &[Class::WorkerRegistration],
        }
    }

    /// Shard creation and worker registration only mean something on a real Citus coordinator.
    pub fn requires_citus(self) -> bool {
        matches!(self, ScenarioKind::ShardCreation | ScenarioKind::WorkerRegistration)
    }

    /// Cluster-wide DDL serialises on the coordinator anyway, and concurrent add/remove of one
    /// worker would fight itself, so these run on one connection whatever --clients says.
    pub fn max_clients(self) -> Option<usize> {
        match self {
            ScenarioKind::ShardCreation | ScenarioKind::WorkerRegistration => Some(1),
            _ => None,
        }
    }
}

/// One operation's result: the class it belongs to and its latency, or why it failed.
#[derive(Debug)]
pub struct Outcome {
    pub class: Class,
    pub result: Result<Duration, String>,
}

impl Outcome {
    pub fn of(class: Class, result: Result<Duration, String>) -> Outcome {
        Outcome { class, result }
    }
}

#[derive(Debug)]
pub enum PrepareError {
    /// The scenario does not apply to this target (not Citus, no worker): not a failure.
    Skip(String),
    Failed(String),
}

pub struct PrepareCtx<'a> {
    pub info: &'a TargetInfo,
    pub register_worker: Option<&'a (String, u16)>,
}

/// A scenario's per-connection state (prepared statements, key ranges).
pub enum Prepared {
    PointSelect(point_select::PointSelect),
    Aggregation(aggregation::Aggregation),
    Count(count::Count),
    VectorSearch(vector_search::VectorSearch),
    Insert10k(insert_10k::Insert10k),
    Copy10k(copy_10k::Copy10k),
    Mixed(mixed::Mixed),
    Cached(cached::Cached),
    ShardCreation(shard_creation::ShardCreation),
    WorkerRegistration(worker_registration::WorkerRegistration),
}

impl Prepared {
    pub async fn prepare(kind: ScenarioKind, client: &Client, ctx: &PrepareCtx<'_>) -> Result<Prepared, PrepareError> {
        if kind.requires_citus() && !ctx.info.citus {
            return Err(PrepareError::Skip("not a Citus coordinator".into()));
        }
        Ok(match kind {
            ScenarioKind::PointSelect => Prepared::PointSelect(point_select::PointSelect::prepare(client).await?),
            ScenarioKind::Aggregation => Prepared::Aggregation(aggregation::Aggregation::prepare(client).await?),
            ScenarioKind::Count => Prepared::Count(count::Count::prepare(client).await?),
            ScenarioKind::VectorSearch => Prepared::VectorSearch(vector_search::VectorSearch::prepare(client).await?),
            ScenarioKind::Insert10k => Prepared::Insert10k(insert_10k::Insert10k::prepare(client).await?),
            ScenarioKind::Copy10k => Prepared::Copy10k(copy_10k::Copy10k::prepare(client).await?),
            ScenarioKind::Mixed => Prepared::Mixed(mixed::Mixed::prepare(client).await?),
            ScenarioKind::Cached => Prepared::Cached(cached::Cached::prepare(client).await?),
            ScenarioKind::ShardCreation => Prepared::ShardCreation(shard_creation::ShardCreation::prepare(client).await?),
            ScenarioKind::WorkerRegistration => {
                Prepared::WorkerRegistration(worker_registration::WorkerRegistration::prepare(client, ctx.register_worker).await?)
            }
        })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        match self {
            Prepared::PointSelect(s) => s.run(client, rng).await,
            Prepared::Aggregation(s) => s.run(client).await,
            Prepared::Count(s) => s.run(client, rng).await,
            Prepared::VectorSearch(s) => s.run(client, rng).await,
            Prepared::Insert10k(s) => s.run(client, rng).await,
            Prepared::Copy10k(s) => s.run(client, rng).await,
            Prepared::Mixed(s) => s.run(client, rng).await,
            Prepared::Cached(s) => s.run(client, rng).await,
            Prepared::ShardCreation(s) => s.run(client).await,
            Prepared::WorkerRegistration(s) => s.run(client).await,
        }
    }
}

/// Times one statement; the error keeps the server's message.
pub(crate) async fn timed<T>(fut: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<Duration, String> {
    let started = Instant::now();
    fut.await.map_err(|e| describe_pg(&e))?;
    Ok(started.elapsed())
}

pub(crate) fn failed(what: &str) -> impl Fn(tokio_postgres::Error) -> PrepareError + '_ {
    move |e| PrepareError::Failed(format!("{what}: {}", describe_pg(&e)))
}

/// The largest user id, so keys are drawn from the data that is really there (any --scale).
pub(crate) async fn max_user_id(client: &Client) -> Result<i64, PrepareError> {
    let row =
        client.query_one("SELECT coalesce(max(user_id), 1)::bigint FROM users", &[]).await.map_err(failed("read the user id range"))?;
    Ok(row.get(0))
}

/// Names and batch ids unique across clients, targets and concurrent load-test processes, since
/// two targets may well be the same database.
pub(crate) fn unique_id() -> i64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let seq = NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF;
    ((u64::from(std::process::id()) << 32) | seq) as i64
}
