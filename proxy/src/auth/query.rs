//! `auth.query`: fetching a role's secret from the coordinator as `auth.user`, over one
//! tokio-postgres connection that is kept between lookups and re-opened when it broke.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Statement};

use super::Secret;
use crate::net::tls::postgres_client::{connect, describe};

pub struct SecretQuery {
    pg: tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    sql: String,
    /// The open connection with the query prepared on it; lookups take turns on it.
    conn: Mutex<Option<(Client, Statement)>>,
}

impl SecretQuery {
    pub fn new(pg: tokio_postgres::Config, tls: Option<Arc<rustls::ClientConfig>>, sql: String) -> SecretQuery {
        SecretQuery { pg, tls, sql, conn: Mutex::new(None) }
    }

    /// The secret of `user`: None when the query returns no row or a NULL secret. A failure on a
    /// kept connection is retried once on a new one (the coordinator may have restarted).
    pub async fn lookup(&self, user: &str) -> Result<Option<Secret>, String> {
        let mut conn = self.conn.lock().await;
        let mut fresh = false;
        loop {
            if conn.as_ref().is_none_or(|(c, _)| c.is_closed()) {
                *conn = Some(self.open().await?);
                fresh = true;
            }
            let Some((client, stmt)) = conn.as_ref() else { continue };
            match client.query(stmt, &[&user]).await {
                Ok(rows) => {
                    let Some(row) = rows.first() else { return Ok(None) };
                    let secret: Option<String> = row.try_get(1).map_err(|e| format!("`auth.query` column 2: {e}"))?;
                    return Ok(secret.map(|s| Secret::parse(&s)));
                }
                // A broken kept connection (the backend was terminated: its FATAL error, or a
                // closed socket) is re-opened once; an error of the query itself (bad SQL,
                // permissions) would fail again, so it is reported.
                Err(e) if !fresh && (client.is_closed() || e.as_db_error().is_none_or(|d| d.severity() != "ERROR")) => *conn = None,
                Err(e) => return Err(format!("`auth.query` failed: {}", describe(&e))),
            }
        }
    }

    async fn open(&self) -> Result<(Client, Statement), String> {
        let client = connect(&self.pg, self.tls.as_ref())
            .await
            .map_err(|e| format!("cannot connect as `auth.user` {:?}: {}", self.pg.get_user().unwrap_or_default(), describe(&e)))?;
        let stmt = client.prepare(&self.sql).await.map_err(|e| format!("`auth.query` does not prepare: {}", describe(&e)))?;
        if stmt.params().len() != 1 || stmt.columns().len() < 2 {
            return Err(format!(
                "`auth.query` must take one parameter (the user name) and return the name and the secret; it takes {} and returns {} columns",
                stmt.params().len(),
                stmt.columns().len()
            ));
        }
        Ok((client, stmt))
    }
}
