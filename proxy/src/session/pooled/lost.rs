//! A Citus node that served the client's transaction went away in the middle of it (shard-local
//! routing). Through the coordinator such a failure is an error the session survives; so it is
//! here: each statement in flight gets an error (none is retried: it may have run), and a
//! transaction block the client had open stays open in the failed state on a coordinator
//! connection, so what follows gets PostgreSQL's own answers (25P02 until ROLLBACK).

use bytes::BytesMut;
use citus_proxy_cache::WriteScope;
use tokio::io::AsyncWriteExt;

use super::relay::{Link, Pooled};
use crate::error::SessionError;
use crate::pool::prepared::ResponseFixups;
use crate::pool::Target;
use crate::wire::error_response::{encode, Severity};
use crate::wire::ready::{self, TxStatus};

impl Pooled<'_> {
    pub(super) async fn node_lost(&mut self, why: String) -> Result<(), SessionError> {
        let Link::Attached(conn) = std::mem::replace(&mut self.link, Link::Detached) else { return Ok(()) };
        let addr = conn.info.addr.clone();
        if let Some(side) = conn.pool().node.as_ref() {
            side.refused(&conn.pool().key, &why);
        }
        let _ = self.cancel.detach(self.ctx.config.upstream.connect_timeout).await;
        // Dropping it frees its place in the pool.
        drop(conn);
        self.spass = 0;
        self.sout.clear();
        self.fixups = ResponseFixups::new();
        self.copy_in = false;
        self.at_statement_start = true;
        let in_block = self.tx != TxStatus::Idle;
        let status = if in_block { TxStatus::Failed } else { TxStatus::Idle };
        let msg = if in_block {
            format!(
                "lost the connection to node {addr} in the middle of this transaction ({why}); nothing was retried, the \
                 transaction block is aborted, and if COMMIT was in flight its outcome is unknown"
            )
        } else {
            format!("lost the connection to node {addr} while a statement ran ({why}); it was not retried and may or may not have run")
        };
        let mut out = BytesMut::new();
        let mut unsettled: Vec<WriteScope> = std::mem::take(&mut self.tx_writes);
        while let Some(mut p) = self.pending.pop_front() {
            out.extend_from_slice(&encode(Severity::Error, "08006", &msg, None));
            out.extend_from_slice(&ready::frame(status));
            unsettled.append(&mut p.writes);
            if let Some(wait) = self.finished(&p, status) {
                wait.await;
            }
        }
        self.info.set_busy_since(None);
        self.tx = status;
        self.info.set_tx(status);
        // What it may have written is stale wherever the outcome is unknown.
        if let Some(cache) = &self.ctx.cache {
            for scope in &unsettled {
                cache.invalidate(scope).await;
            }
        }
        self.client.w.write_all(&out).await.map_err(SessionError::ClientIo)?;
        if in_block {
            self.attach_to(Target::Coordinator).await?;
            let Link::Attached(conn) = &mut self.link else { return Ok(()) };
            super::place::open_aborted_block(conn, "BEGIN", self.ctx.config.upstream.connect_timeout).await?;
        }
        Ok(())
    }
}
