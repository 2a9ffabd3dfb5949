//! `insert_10k`: one multi-row INSERT of 10,000 rows into the scratch table `loadtest_bulk`.
//! The statement text is built before the clock starts; the batch is deleted after it stops.

use std::fmt::Write as _;

use tokio_postgres::{Client, Statement};

use super::{failed, max_user_id, timed, unique_id, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

pub const ROWS: usize = 10_000;

pub struct Insert10k {
    max_key: i64,
    cleanup: Statement,
}

impl Insert10k {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let max_key = max_user_id(client).await?;
        let cleanup = prepare_cleanup(client).await?;
        Ok(Insert10k { max_key, cleanup })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let batch = unique_id();
        let mut sql = String::with_capacity(ROWS * 32 + 80);
        sql.push_str("INSERT INTO loadtest_bulk (user_id, seq, batch, payload) VALUES ");
        for seq in 0..ROWS {
            let sep = if seq == 0 { "" } else { "," };
            // Writing into a String cannot fail.
            let _ = write!(sql, "{sep}({},{seq},{batch},'row {seq}')", rng.key(self.max_key));
        }
        // Simple protocol on purpose: literal VALUES is what bulk loaders send, and what the
        // proxy's classifier counts as a ≥1000-row INSERT.
        let result = timed(client.batch_execute(&sql)).await;
        Outcome::of(Class::BulkInsert, finish(client, &self.cleanup, batch, result).await)
    }
}

pub(super) async fn prepare_cleanup(client: &Client) -> Result<Statement, PrepareError> {
    client
        .prepare("DELETE FROM loadtest_bulk WHERE batch = $1")
        .await
        .map_err(failed("prepare the loadtest_bulk clean-up (add `--scenario setup`)"))
}

/// Removes the batch (untimed) so the table stays small however long the run.
pub(super) async fn finish(
    client: &Client,
    cleanup: &Statement,
    batch: i64,
    result: Result<std::time::Duration, String>,
) -> Result<std::time::Duration, String> {
    let elapsed = result?;
    client.execute(cleanup, &[&batch]).await.map_err(|e| format!("clean-up after the insert: {}", crate::error::describe_pg(&e)))?;
    Ok(elapsed)
}
