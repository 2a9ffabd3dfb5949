//! Opening a server connection for a pool: TCP/TLS as `upstream.*` says, a startup packet for
//! the pool's role and database, and the login with the credential the pool's clients proved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::ServerConn;
use super::info::ServerInfo;
use super::key::PoolKey;
use super::Credential;
use crate::context::Context;
use crate::net::upstream::ConnectError;
use crate::wire::backend_key::CancelKey;
use crate::wire::frame::{total_len, HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("server connection lost during login: {0}")]
    Io(#[from] std::io::Error),
    #[error("server login did not finish within {0:?}")]
    Timeout(Duration),
    #[error("malformed message from the server during login")]
    Malformed,
    #[error("the server asks for a password and the pool has none for this role (authenticate a client first)")]
    NoPassword,
    #[error("the server asks for an authentication method the proxy cannot answer (code {0})")]
    Unsupported(i32),
    /// The server's ErrorResponse body (wrong password, unknown database, too many connections…).
    #[error("server refused the login: {}", crate::pool::describe_error(.0))]
    Refused(Vec<u8>),
}

impl OpenError {
    /// The ErrorResponse a client waiting for this connection gets.
    pub fn to_client(&self) -> BytesMut {
        use crate::wire::error_response::{encode, Severity};
        match self {
            OpenError::Refused(body) => {
                let mut out = BytesMut::new();
                out.extend_from_slice(&crate::wire::frame::build(b'E', body));
                out
            }
            other => encode(Severity::Error, "08001", &format!("could not open a server connection: {other}"), None),
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

/// What a fresh login reported.
pub struct Hello {
    pub key: CancelKey,
    pub parameters: Vec<(String, String)>,
}

pub async fn open(
    ctx: &Context,
    key: &PoolKey,
    id: u64,
    generation: u64,
    credential: &Credential,
    place: super::pools::Place,
) -> Result<(ServerConn, Hello), OpenError> {
    let timeout = ctx.config.upstream.connect_timeout;
    let info = Arc::new(ServerInfo::new(id, key.clone(), ctx.connector.addr().to_string()));
    let stream = ctx.connector.connect().await?;
    let (r, w) = stream.split();
    let mut conn = ServerConn {
        r,
        w,
        buf: BytesMut::with_capacity(16 * 1024),
        key: CancelKey { pid: 0, secret: Vec::new() },
        info,
        created: Instant::now(),
        idle_since: Instant::now(),
        generation,
        state: Default::default(),
        _place: place,
    };
    let hello = tokio::time::timeout(timeout, login(&mut conn, key, credential)).await.map_err(|_| OpenError::Timeout(timeout))??;
    conn.key = hello.key.clone();
    conn.info.set_pid(hello.key.pid);
    Ok((conn, hello))
}

async fn login(conn: &mut ServerConn, key: &PoolKey, credential: &Credential) -> Result<Hello, OpenError> {
    conn.w.write_all(&startup_packet(key)).await?;
    let mut hello = Hello { key: CancelKey { pid: 0, secret: Vec::new() }, parameters: Vec::new() };
    loop {
        let (tag, body) = next_frame(conn).await?;
        match tag {
            b'R' => {
                let code = body.first_chunk::<4>().map(|c| i32::from_be_bytes(*c)).ok_or(OpenError::Malformed)?;
                let answer = super::login_answer(code, body.get(4..).unwrap_or_default(), credential)?;
                if let Some(answer) = answer {
                    conn.w.write_all(&answer).await?;
                }
            }
            b'K' => hello.key = CancelKey::decode(&body).map_err(|_| OpenError::Malformed)?,
            b'S' => {
                if let Some((k, v)) = crate::wire::parameter_status::decode(&body) {
                    hello.parameters.push((k.to_string(), v.to_string()));
                }
            }
            b'E' => return Err(OpenError::Refused(body.to_vec())),
            b'Z' => return Ok(hello),
            _ => {}
        }
    }
}

async fn next_frame(conn: &mut ServerConn) -> Result<(u8, BytesMut), OpenError> {
    loop {
        if let Some(header) = conn.buf.first_chunk::<HEADER_LEN>() {
            let total = total_len(header).ok_or(OpenError::Malformed)?;
            if total > 1 << 20 {
                return Err(OpenError::Malformed);
            }
            if conn.buf.len() >= total {
                let tag = header[0];
                let mut frame = conn.buf.split_to(total);
                frame.advance(HEADER_LEN);
                return Ok((tag, frame));
            }
        }
        conn.buf.reserve(4096);
        if conn.r.read_buf(&mut conn.buf).await? == 0 {
            return Err(OpenError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}
