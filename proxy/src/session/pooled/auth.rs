//! The proxy's own check of a pooled client's password (`auth.type`, secrets from `auth.file` or
//! `auth.query`): see `crate::auth`.

use std::sync::Arc;

use super::relay::Client;
use crate::context::Context;
use crate::error::SessionError;
use crate::pool::{Credential, PoolKey};
use crate::session::frames::FrameReader;

/// Runs the authentication exchange; on success the client has been sent AuthenticationOk and
/// the returned credential logs server connections in as its role.
pub async fn authenticate(ctx: &Arc<Context>, client: &mut Client, key: &PoolKey) -> Result<Credential, SessionError> {
    let Some(auth) = &ctx.authenticator else {
        return Err(SessionError::Protocol("pooled modes need auth.* configured".into()));
    };
    // The exchange reads whole frames; what it reads ahead stays in the client's buffer.
    let mut reader = FrameReader { inner: &mut client.r, buf: std::mem::take(&mut client.buf) };
    let result = auth.authenticate_client(&mut reader, &mut client.w, &key.user, &key.database).await;
    client.buf = reader.buf;
    result.map_err(|e| {
        if let Some(why) = e.log_detail() {
            tracing::info!(user = %key.user, database = %key.database, reason = why, "authentication failed");
        }
        SessionError::Auth(e.to_client())
    })
}
