//! `point_select`: one user by its distribution key, the proxy's single-shard fast path.

use tokio_postgres::{Client, Statement};

use super::{failed, max_user_id, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

pub struct PointSelect {
    stmt: Statement,
    max_key: i64,
}

impl PointSelect {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let max_key = max_user_id(client).await?;
        let stmt = client
            .prepare("SELECT user_id, username, email FROM users WHERE user_id = $1")
            .await
            .map_err(failed("prepare point_select"))?;
        Ok(PointSelect { stmt, max_key })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let key = rng.key(self.max_key);
        Outcome::of(Class::SingleShardQuery, timed(client.query(&self.stmt, &[&key])).await)
    }
}
