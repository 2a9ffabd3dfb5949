//! Opening a server connection for a pool: TCP/TLS as `upstream.*` says, a startup packet for
//! the pool's role and database, and the login with the credential the pool's clients proved.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::conn::ServerConn;
use super::info::ServerInfo;
use super::key::PoolKey;
use super::Credential;
use crate::auth::{login_server, LoginError, ServerHello};
use crate::context::Context;
use crate::net::upstream::{ConnectError, Connector};
use crate::session::frames::FrameReader;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Login(#[from] LoginError),
}

impl OpenError {
    /// The ErrorResponse a client waiting for this connection gets: the server's own when it
    /// refused the login (wrong password, unknown database, too many connections), else 08001.
    pub fn to_client(&self) -> BytesMut {
        use crate::wire::error_response::{encode, Severity};
        match self {
            OpenError::Login(LoginError::Server { frame }) => frame.clone(),
            other => encode(Severity::Fatal, "08001", &format!("could not open a server connection: {other}"), None),
        }
    }
}

/// The StartupMessage (protocol 3.0) a pool's server connections send.
pub fn startup_packet(key: &PoolKey) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", key.user.as_str()), ("database", key.database.as_str())] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = Vec::with_capacity(4 + body.len());
    packet.extend_from_slice(&((4 + body.len()) as i32).to_be_bytes());
    packet.extend_from_slice(&body);
    packet
}

#[allow(clippy::too_many_arguments)] // the parts of one login, each its own
pub async fn open(
    ctx: &Context,
    connector: &Connector,
    key: &PoolKey,
    id: u64,
    generation: u64,
    credential: &Credential,
    place: super::pools::Place,
) -> Result<(super::conn::Conn, ServerHello), OpenError> {
    let timeout = ctx.config.upstream.connect_timeout;
    let stream = connector.connect().await?;
    let (r, mut w) = stream.split();
    let mut reader = FrameReader::new(r);
    let hello = login_server(&mut reader, &mut w, &startup_packet(key), credential, timeout).await?;
    let info = Arc::new(ServerInfo::new(id, key.clone(), connector.addr().to_string()));
    info.set_pid(hello.key.pid);
    let FrameReader { inner: r, buf } = reader;
    let conn = Box::new(ServerConn {
        r,
        w,
        buf,
        key: Arc::new(hello.key.clone()),
        info,
        created: Instant::now(),
        idle_since: Instant::now(),
        home: crate::workers::current(),
        generation,
        state: super::ServerSideState::new(ctx.live().pool.max_prepared_statements as usize),
        _place: place,
    });
    Ok((conn, hello))
}
