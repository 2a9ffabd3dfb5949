//! `auth.query`: fetching a role's secret from the coordinator as `auth.user`, over one
//! tokio-postgres connection that is kept between lookups and re-opened when it broke.
//! Concurrent lookups are pipelined on it (the lock is held only to take or replace it).

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, Statement};

use super::Secret;
use crate::net::tls::postgres_client::{connect, describe};

pub struct SecretQuery {
    pg: tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    sql: String,
    /// The open connection with the query prepared on it.
    conn: Mutex<Option<Arc<Prepared>>>,
}

struct Prepared {
    client: Client,
    stmt: Statement,
}

impl SecretQuery {
    pub fn new(pg: tokio_postgres::Config, tls: Option<Arc<rustls::ClientConfig>>, sql: String) -> SecretQuery {
        SecretQuery { pg, tls, sql, conn: Mutex::new(None) }
    }

    /// The secret of `user`: None when the query returns no row or a NULL secret. A failure on a
    /// kept connection is retried once on a new one (the coordinator may have restarted).
    pub async fn lookup(&self, user: &str) -> Result<Option<Secret>, String> {
        let (mut conn, mut fresh) = self.current(None).await?;
        loop {
            match conn.client.query(&conn.stmt, &[&user]).await {
                Ok(rows) => {
                    let Some(row) = rows.first() else { return Ok(None) };
                    let secret: Option<String> = row.try_get(1).map_err(|e| format!("`auth.query` column 2: {e}"))?;
                    return Ok(secret.map(|s| Secret::parse(&s)));
                }
                // A broken kept connection (the backend was terminated: its FATAL error, or a
                // closed socket) is re-opened once; an error of the query itself (bad SQL,
                // permissions) would fail again, so it is reported.
                Err(e) if !fresh && (conn.client.is_closed() || e.as_db_error().is_none_or(|d| d.severity() != "ERROR")) => {
                    (conn, fresh) = self.current(Some(&conn)).await?;
                }
                Err(e) => return Err(format!("`auth.query` failed: {}", describe(&e))),
            }
        }
    }

    /// The kept connection, opened if there is none, it is closed, or it is `broken` (and no
    /// other lookup has replaced it yet). True when it was opened by this call.
    async fn current(&self, broken: Option<&Arc<Prepared>>) -> Result<(Arc<Prepared>, bool), String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            let is_broken = broken.is_some_and(|b| Arc::ptr_eq(b, c));
            if !is_broken && !c.client.is_closed() {
                return Ok((Arc::clone(c), false));
            }
        }
        *slot = None;
        let c = Arc::new(self.open().await?);
        *slot = Some(Arc::clone(&c));
        Ok((c, true))
    }

    async fn open(&self) -> Result<Prepared, String> {
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
        Ok(Prepared { client, stmt })
    }
}
