//! The client's first packets: TLS negotiation (SSLRequest, PostgreSQL 17's direct TLS,
//! GSSENCRequest refused), then a StartupMessage or a CancelRequest.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::context::Context;
use crate::error::SessionError;
use crate::net::stream::Stream;
use crate::net::tls::ALPN_POSTGRESQL;
use crate::wire::backend_key::CancelKey;
use crate::wire::startup::{FirstPacket, StartupParams, MAX_STARTUP_PACKET};
use crate::wire::{cancel_request, WireError};

/// TLS records start with this byte (handshake content type); no valid startup length does.
const TLS_HANDSHAKE_BYTE: u8 = 0x16;

pub struct Startup {
    pub client: Stream,
    /// The StartupMessage exactly as received, forwarded unchanged.
    pub packet: Vec<u8>,
    pub user: String,
    pub database: String,
}

impl Startup {
    /// The startup parameters as text (later duplicates win, as in PostgreSQL), for the hooks.
    pub fn parameters(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some(params) = self.packet.get(8..).and_then(|rest| StartupParams::decode(rest).ok()) {
            for (k, v) in params.iter() {
                let (k, v) = (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned());
                out.retain(|(old, _)| *old != k);
                out.push((k, v));
            }
        }
        out
    }

    /// The startup packet with `database` in place of the client's (for the admin console's
    /// authentication against the coordinator); every other parameter kept in order.
    pub fn with_database(&self, database: &str) -> Vec<u8> {
        let Some(([_, _, _, _, code @ ..], rest)) = self.packet.split_first_chunk::<8>() else {
            // Not a startup packet (`open` never builds one): forwarded as is, for the
            // coordinator to refuse.
            return self.packet.clone();
        };
        let mut body = Vec::with_capacity(rest.len() + database.len());
        let mut replaced = false;
        if let Ok(params) = StartupParams::decode(rest) {
            for (k, v) in params.iter() {
                body.extend_from_slice(k);
                body.push(0);
                if k == b"database" {
                    body.extend_from_slice(database.as_bytes());
                    replaced = true;
                } else {
                    body.extend_from_slice(v);
                }
                body.push(0);
            }
        }
        if !replaced {
            body.extend_from_slice(b"database\0");
            body.extend_from_slice(database.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = Vec::with_capacity(8 + body.len());
        packet.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
        packet.extend_from_slice(code);
        packet.extend_from_slice(&body);
        packet
    }
}

pub enum Opening {
    Startup(Startup),
    /// The key, and the client's connection: kept open until the cancel was delivered.
    Cancel(CancelKey, Stream),
}

type Failed = (SessionError, Option<Stream>);

pub async fn open(ctx: &Arc<Context>, tcp: TcpStream) -> Result<Opening, Failed> {
    let mut first = [0u8; 1];
    let peeked = tcp.peek(&mut first).await.map_err(|e| (SessionError::ClientIo(e), None))?;
    let mut stream = if peeked == 1 && first[0] == TLS_HANDSHAKE_BYTE { direct_tls(ctx, tcp).await? } else { Stream::Plain(tcp) };
    // SSLRequest and GSSENCRequest may each come once before the real first packet.
    for _ in 0..3 {
        let (code, rest) = match read_first_packet(&mut stream).await {
            Ok(p) => p,
            Err(e) => return Err((e, Some(stream))),
        };
        match FirstPacket::from_code(code) {
            FirstPacket::SslRequest => {
                if stream.is_tls() {
                    return Err((SessionError::Protocol("SSLRequest on an encrypted connection".into()), Some(stream)));
                }
                stream = negotiate_tls(ctx, stream).await?;
            }
            FirstPacket::GssEncRequest => {
                stream.write_all(b"N").await.map_err(|e| (SessionError::ClientIo(e), None))?;
            }
            FirstPacket::Cancel => {
                return match cancel_request::decode(&rest) {
                    Ok(key) => Ok(Opening::Cancel(key, stream)),
                    Err(e) => Err((SessionError::Protocol(e.to_string()), None)),
                };
            }
            FirstPacket::Startup { major, minor } => {
                if major != 3 {
                    return Err((SessionError::UnsupportedProtocol(major, minor), Some(stream)));
                }
                let params = match StartupParams::decode(&rest) {
                    Ok(p) => p,
                    Err(e) => return Err((SessionError::Protocol(format!("invalid startup packet: {e}")), Some(stream))),
                };
                let user = params.get("user").unwrap_or_default().to_string();
                let database = params.get("database").map(str::to_string).unwrap_or_else(|| user.clone());
                let mut packet = Vec::with_capacity(8 + rest.len());
                packet.extend_from_slice(&((8 + rest.len()) as i32).to_be_bytes());
                packet.extend_from_slice(&code.to_be_bytes());
                packet.extend_from_slice(&rest);
                return Ok(Opening::Startup(Startup { client: stream, packet, user, database }));
            }
        }
    }
    Err((SessionError::Protocol("too many negotiation requests before startup".into()), Some(stream)))
}

/// Reads `length | code | rest` of an untagged first packet, bounds-checked.
async fn read_first_packet(stream: &mut Stream) -> Result<(i32, Vec<u8>), SessionError> {
    // The length is checked before anything else is awaited, so a bad one is refused at once.
    let len = stream.read_i32().await.map_err(SessionError::ClientIo)?;
    if len < 8 || len as usize > MAX_STARTUP_PACKET {
        return Err(SessionError::Protocol(format!("invalid length of startup packet ({len})")));
    }
    let code = stream.read_i32().await.map_err(SessionError::ClientIo)?;
    let mut rest = vec![0u8; len as usize - 8];
    stream.read_exact(&mut rest).await.map_err(SessionError::ClientIo)?;
    Ok((code, rest))
}

async fn negotiate_tls(ctx: &Arc<Context>, stream: Stream) -> Result<Stream, Failed> {
    let Stream::Plain(mut tcp) = stream else {
        return Err((SessionError::Protocol("SSLRequest on an encrypted connection".into()), None));
    };
    let Some(acceptor) = &ctx.tls else {
        tcp.write_all(b"N").await.map_err(|e| (SessionError::ClientIo(e), None))?;
        return Ok(Stream::Plain(tcp));
    };
    tcp.write_all(b"S").await.map_err(|e| (SessionError::ClientIo(e), None))?;
    let tls = acceptor.accept(tcp).await.map_err(|e| (SessionError::ClientTls(e.to_string()), None))?;
    Ok(Stream::ServerTls(Box::new(tls)))
}

/// PostgreSQL 17 clients may open with TLS directly; they must then name ALPN `postgresql`.
async fn direct_tls(ctx: &Arc<Context>, tcp: TcpStream) -> Result<Stream, Failed> {
    let Some(acceptor) = &ctx.tls else {
        return Err((SessionError::ClientTls("direct TLS connection, but no tls.cert_file is configured".into()), None));
    };
    let tls = acceptor.accept(tcp).await.map_err(|e| (SessionError::ClientTls(e.to_string()), None))?;
    if tls.get_ref().1.alpn_protocol() != Some(ALPN_POSTGRESQL) {
        return Err((SessionError::ClientTls("direct TLS requires ALPN \"postgresql\"".into()), None));
    }
    Ok(Stream::ServerTls(Box::new(tls)))
}

/// Forwards a client's CancelRequest to the backend its key maps to. Nothing is answered (as
/// PostgreSQL answers nothing); an unknown key is dropped. As PostgreSQL does, the client's
/// connection is closed only once the backend was signalled: drivers (libpq's PQcancel) wait
/// for that close before their next command, so closing earlier would let the cancel land on
/// that next command instead.
pub async fn forward_cancel(ctx: &Arc<Context>, key: &CancelKey, client: Stream, peer: SocketAddr) {
    match ctx.cancels.lookup_target(key) {
        Some(crate::cancel::Target::Upstream(upstream_key)) => deliver_cancel(&ctx.connector, ctx, &upstream_key, key.pid, peer).await,
        Some(crate::cancel::Target::Pooled(target)) => match target.begin() {
            // Held until delivered: the server connection is not given to anyone else meanwhile.
            Some(held) => deliver_cancel(held.via().unwrap_or(&ctx.connector), ctx, held.key(), key.pid, peer).await,
            None => debug!(%peer, pid = key.pid, "cancel request for a client with no statement running ignored"),
        },
        None => debug!(%peer, pid = key.pid, "cancel request with an unknown key ignored"),
    }
    drop(client);
}

/// Sends the CancelRequest upstream and waits for the coordinator to close the connection,
/// which it does once it has signalled the backend.
async fn deliver_cancel(to: &crate::net::upstream::Connector, ctx: &Arc<Context>, upstream_key: &CancelKey, pid: i32, peer: SocketAddr) {
    let bound = ctx.config.upstream.connect_timeout;
    let mut up = match to.connect().await {
        Ok(up) => up,
        Err(e) => return debug!(%peer, error = %e, "could not forward a cancel request"),
    };
    if let Err(e) = up.write_all(&upstream_key.cancel_request()).await {
        return debug!(%peer, error = %e, "could not forward a cancel request");
    }
    let closed = tokio::time::timeout(bound, async {
        let mut sink = [0u8; 64];
        // The coordinator answers nothing: anything read is discarded until it closes.
        while matches!(up.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    match closed {
        Ok(()) => debug!(%peer, pid, "cancel request delivered"),
        Err(_) => debug!(%peer, pid, "cancel request sent; the coordinator did not close within upstream.connect_timeout"),
    }
}

impl From<WireError> for SessionError {
    fn from(e: WireError) -> Self {
        SessionError::Protocol(e.to_string())
    }
}
