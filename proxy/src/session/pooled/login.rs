//! A pooled client's login: the proxy checks its password (`auth.*`), makes sure its pool knows
//! the server's parameters (opening a first connection if need be), and answers as PostgreSQL
//! would: ParameterStatus for each reported setting, BackendKeyData, ReadyForQuery.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::relay::Client;
use crate::context::Context;
use crate::error::SessionError;
use crate::pool::Pool;
use crate::wire::backend_key::CancelKey;
use crate::wire::ready::{self, TxStatus};

/// Authenticates the client and returns the parameters to report to it.
pub async fn login(
    ctx: &Arc<Context>,
    pool: &Arc<Pool>,
    client: &mut Client,
    startup: &[(String, String)],
) -> Result<Vec<(String, String)>, SessionError> {
    let credential = super::auth::authenticate(ctx, client, &pool.key).await?;
    pool.set_credential(credential);
    let params = match pool.params() {
        Some(p) => p,
        None => {
            // The pool has never logged in: one connection, given back at once, teaches it the
            // server's parameters (and proves the credential works).
            let conn = ctx.pools.checkout(ctx, pool, 0).await.map_err(|e| SessionError::Pool(e.to_client()))?;
            ctx.pools.checkin(ctx, pool, conn, true).await;
            pool.params().ok_or_else(|| SessionError::Protocol("the server reported no parameters".into()))?
        }
    };
    // What the client asked for at startup wins over the server connection's own value: the
    // proxy applies it before each of the client's statements.
    let mut out: Vec<(String, String)> = params.iter().cloned().collect();
    for (k, v) in startup {
        if let Some(slot) = out.iter_mut().find(|(name, _)| name.eq_ignore_ascii_case(k)) {
            slot.1 = v.clone();
        }
    }
    Ok(out)
}

/// ParameterStatus…, BackendKeyData, ReadyForQuery: the client may start.
pub async fn welcome(client: &mut Client, params: &[(String, String)], key: &CancelKey) -> Result<(), SessionError> {
    let mut out = BytesMut::with_capacity(512);
    for (k, v) in params {
        let body = [k.as_bytes(), &[0], v.as_bytes(), &[0]].concat();
        out.extend_from_slice(&crate::wire::frame::build(b'S', &body));
    }
    out.extend_from_slice(&key.frame());
    out.extend_from_slice(&ready::frame(TxStatus::Idle));
    client.w.write_all(&out).await.map_err(SessionError::ClientIo)
}

/// Tells a client its login failed, and closes.
pub async fn refuse(client: &mut Client, err: &SessionError) {
    if let Some(msg) = err.to_client() {
        let _ = client.w.write_all(&msg).await;
    }
    let _ = client.w.shutdown().await;
}
