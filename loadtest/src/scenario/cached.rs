//! `cached`: the same few reads over and over, the workload a result cache exists for: a hot set
//! of 8 users and 8 config keys (single-shard / reference reads) and one repeated count.
//! Without a cache in front, this measures the server's own buffer-cache path. The statements
//! carry the proxy's cache hint comment, which any other server ignores as a comment.

use tokio_postgres::{Client, Statement};

use super::{failed, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::rng::Rng;

const HOT: u64 = 8;
const HINT: &str = "/* citus-proxy: cache ttl=30s */ ";

pub struct Cached {
    user: Statement,
    config: Statement,
    count: Statement,
}

impl Cached {
    pub async fn prepare(client: &Client) -> Result<Self, PrepareError> {
        let p = |sql: &'static str| async move { client.prepare(&format!("{HINT}{sql}")).await.map_err(failed("prepare cached")) };
        Ok(Cached {
            user: p("SELECT user_id, username, email FROM users WHERE user_id = $1").await?,
            config: p("SELECT value FROM config WHERE key = $1").await?,
            count: p("SELECT count(*) FROM page_views").await?,
        })
    }

    pub async fn run(&self, client: &Client, rng: &mut Rng) -> Outcome {
        let roll = rng.below(100);
        let hot = 1 + rng.below(HOT) as i64;
        if roll < 45 {
            Outcome::of(Class::SingleShardQuery, timed(client.query(&self.user, &[&hot])).await)
        } else if roll < 90 {
            let key = format!("key{hot}");
            Outcome::of(Class::SingleShardQuery, timed(client.query(&self.config, &[&key])).await)
        } else {
            Outcome::of(Class::Count, timed(client.query(&self.count, &[])).await)
        }
    }
}
