//! `aggregation`: GROUP BY with sum/max over every shard of `events` (not count-only, which is
//! the `count` class).

use tokio_postgres::{Client, Statement};

use super::{failed, timed, Outcome, PrepareError};
use crate::class::Class;

pub struct Aggregation {
    stmt: Statement,
}

impl Aggregation {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let stmt = client
            .prepare(
                "SELECT kind, sum((payload->>'n')::bigint) AS total, max(created_at) AS latest \
                 FROM events GROUP BY kind ORDER BY kind",
            )
            .await
            .map_err(failed("prepare aggregation"))?;
        Ok(Aggregation { stmt })
    }

    pub async fn run(&self, client: &Client) -> Outcome {
        Outcome::of(Class::MultiShardAggregation, timed(client.query(&self.stmt, &[])).await)
    }
}
