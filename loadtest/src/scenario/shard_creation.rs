//! `shard_creation` (Citus only): create_distributed_table on a fresh empty table, co-located
//! with `users` so it creates the same 32 shards. Creating and dropping the table is untimed.

use tokio_postgres::Client;

use super::{timed, unique_id, Outcome, PrepareError};
use crate::class::Class;
use crate::error::describe_pg;

pub struct ShardCreation;

impl ShardCreation {
    pub async fn prepare(_client: &Client) -> Result<Self, PrepareError> {
        Ok(ShardCreation)
    }

    pub async fn run(&self, client: &Client) -> Outcome {
        let table = format!("loadtest_shards_{}", unique_id());
        let pg = |e: tokio_postgres::Error| describe_pg(&e);
        let result = async {
            client.batch_execute(&format!("CREATE TABLE {table} (user_id bigint, v text)")).await.map_err(pg)?;
            let elapsed = timed(client.batch_execute(&format!(
                "SELECT create_distributed_table('{table}', 'user_id', colocate_with := 'none', shard_count := 32)"
            )))
            .await;
            // Drop even when distributing failed, so a failing run leaves no tables behind.
            let dropped = client.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await.map_err(pg);
            let elapsed = elapsed?;
            dropped?;
            Ok(elapsed)
        }
        .await;
        Outcome::of(Class::ShardCreation, result)
    }
}
