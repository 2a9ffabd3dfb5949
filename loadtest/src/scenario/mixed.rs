//! `mixed`: an OLTP-like blend, each statement recorded in its own class: 75% point reads,
//! 10% single-row updates, 10% key/value upserts (single-shard writes), 5% a multi-shard
//! aggregation. Writes rewrite the values already there or a bounded key set, so repeated runs
//! do not grow the data.

use tokio_postgres::{Client, Statement};

use super::{failed, max_user_id, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

pub struct Mixed {
    read: Statement,
    update: Statement,
    upsert: Statement,
    aggregate: Statement,
    max_key: i64,
}

impl Mixed {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let max_key = max_user_id(client).await?;
        let p = |sql: &'static str| async move { client.prepare(sql).await.map_err(failed("prepare mixed")) };
        Ok(Mixed {
            read: p("SELECT user_id, username, email FROM users WHERE user_id = $1").await?,
            update: p("UPDATE users SET email = $2 WHERE user_id = $1").await?,
            upsert: p("INSERT INTO tenants_kv (tenant, k, v) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant, k) DO UPDATE SET v = EXCLUDED.v")
            .await?,
            aggregate: p("SELECT sum(total), avg(total) FROM orders").await?,
            max_key,
        })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let roll = rng.below(100);
        let key = rng.key(self.max_key);
        if roll < 75 {
            Outcome::of(Class::SingleShardQuery, timed(client.query(&self.read, &[&key])).await)
        } else if roll < 85 {
            let email = format!("user{key}@example.com");
            Outcome::of(Class::SingleShardQuery, timed(client.execute(&self.update, &[&key, &email])).await)
        } else if roll < 95 {
            let tenant = format!("tenant{}", key % 300);
            let k = format!("loadtest{}", rng.below(100));
            let v = format!("v{}", rng.next_u64());
            Outcome::of(Class::SingleShardQuery, timed(client.execute(&self.upsert, &[&tenant, &k, &v])).await)
        } else {
            Outcome::of(Class::MultiShardAggregation, timed(client.query(&self.aggregate, &[])).await)
        }
    }
}
