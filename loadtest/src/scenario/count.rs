//! `count`: a filtered count(*) over every shard of `events`.

use tokio_postgres::{Client, Statement};

use super::{failed, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

const KINDS: [&str; 3] = ["click", "view", "buy"];

pub struct Count {
    stmt: Statement,
}

impl Count {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let stmt = client.prepare("SELECT count(*) FROM events WHERE kind = $1").await.map_err(failed("prepare count"))?;
        Ok(Count { stmt })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        Outcome::of(Class::Count, timed(client.query(&self.stmt, &[&kind])).await)
    }
}
