//! `copy_10k`: 10,000 rows through COPY FROM STDIN (text format) into `loadtest_bulk`.

use std::fmt::Write as _;
use std::pin::pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::{Client, Statement};

use super::insert_10k::{finish, prepare_cleanup, ROWS};
use super::{failed, max_user_id, unique_id, Outcome, PrepareError};
use crate::class::Class;
use crate::error::describe_pg;
use crate::rng::Rng;

pub struct Copy10k {
    max_key: i64,
    cleanup: Statement,
}

impl Copy10k {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let max_key = max_user_id(client).await?;
        let cleanup = prepare_cleanup(client).await?;
        // Fails early, outside the measurement, if the table is missing.
        client
            .prepare("SELECT user_id, seq, batch, payload FROM loadtest_bulk LIMIT 0")
            .await
            .map_err(failed("check loadtest_bulk (add `--scenario setup`)"))?;
        Ok(Copy10k { max_key, cleanup })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let batch = unique_id();
        let mut data = String::with_capacity(ROWS * 32);
        for seq in 0..ROWS {
            // Writing into a String cannot fail.
            let _ = writeln!(data, "{}\t{seq}\t{batch}\trow {seq}", rng.key(self.max_key));
        }
        let data = Bytes::from(data);
        let started = Instant::now();
        let result = copy(client, data).await.map(|()| started.elapsed());
        Outcome::of(Class::BulkInsert, finish(client, &self.cleanup, batch, result).await)
    }
}

async fn copy(client: &Client, data: Bytes) -> Result<(), String> {
    let pg = |e: tokio_postgres::Error| describe_pg(&e);
    let sink = client.copy_in("COPY loadtest_bulk (user_id, seq, batch, payload) FROM STDIN").await.map_err(pg)?;
    let mut sink = pin!(sink);
    sink.send(data).await.map_err(pg)?;
    sink.as_mut().finish().await.map_err(pg)?;
    Ok(())
}
