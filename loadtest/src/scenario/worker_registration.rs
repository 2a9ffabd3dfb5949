//! `worker_registration` (Citus only): `citus_add_node`. By default it re-registers an existing
//! primary worker, which Citus answers with the node's id without changing the cluster, so the
//! scenario is safe on a production coordinator. With `--register-worker HOST:PORT` it adds that
//! new node for real (full activation) and removes it again, untimed, after each iteration.

use tokio_postgres::Client;

use super::{failed, timed, Outcome, PrepareError};
use crate::class::Class;
use crate::error::describe_pg;

pub struct WorkerRegistration {
    host: String,
    port: i32,
    remove_after: bool,
}

impl WorkerRegistration {
    pub async fn prepare(client: &Client, new_worker: Option<&(String, u16)>) -> Result<Self, PrepareError> {
        if let Some((host, port)) = new_worker {
            return Ok(WorkerRegistration { host: host.clone(), port: i32::from(*port), remove_after: true });
        }
        let row = client
            .query_opt(
                "SELECT nodename::text, nodeport::int4 FROM pg_dist_node \
                 WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid LIMIT 1",
                &[],
            )
            .await
            .map_err(failed("read pg_dist_node"))?
            .ok_or_else(|| PrepareError::Skip("no active worker to re-register (give --register-worker)".into()))?;
        Ok(WorkerRegistration { host: row.get(0), port: row.get(1), remove_after: false })
    }

    pub async fn run(&self, client: &Client) -> Outcome {
        let result = timed(client.query("SELECT citus_add_node($1, $2)", &[&self.host, &self.port])).await;
        let result = match (result, self.remove_after) {
            (Ok(elapsed), true) => client
                .query("SELECT citus_remove_node($1, $2)", &[&self.host, &self.port])
                .await
                .map(|_| elapsed)
                .map_err(|e| format!("remove the worker again: {}", describe_pg(&e))),
            (other, _) => other,
        };
        Outcome::of(Class::WorkerRegistration, result)
    }
}
