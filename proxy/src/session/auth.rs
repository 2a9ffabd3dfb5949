//! Authentication passthrough: the startup packet goes to the coordinator unchanged and every
//! authentication exchange is relayed, so the client proves itself to the coordinator with
//! whatever method it asks for. Only two frames are changed on the way: BackendKeyData (the
//! client gets the proxy's own cancel secret) and a SASL offer (channel binding removed).
//!
//! The whole exchange runs against the login's deadline; each wait for the coordinator is also
//! bounded by `upstream.connect_timeout` (a hung coordinator must not hang new clients), and
//! the coordinator closing while the client thinks ends the login at once.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::admission::{Admission, ClientSlot};
use super::frames::{tag_and_body, FrameError};
use super::relay::Halves;
use crate::cancel::Registration;
use crate::context::Context;
use crate::error::SessionError;
use crate::net::upstream::ConnectError;
use crate::wire::auth::{classify, without_channel_binding, AuthRequest};
use crate::wire::backend_key::CancelKey;
use crate::wire::frame::HEADER_LEN;

/// Authentication messages are small; anything bigger from the coordinator is not one.
const MAX_AUTH_FRAME: usize = 1 << 20;
/// PostgreSQL's bound on a client's authentication message body (PG_MAX_AUTH_TOKEN_LENGTH);
/// a bigger one is refused from its length alone, before any of it is read.
pub const MAX_AUTH_ANSWER: usize = 65535 + HEADER_LEN;

pub struct Authed {
    pub registration: Option<Registration>,
    /// The ParameterStatus values the coordinator reported while the session started.
    pub parameters: Vec<(String, String)>,
    /// The client slot taken when the coordinator accepted the client (when one was asked for).
    pub slot: Option<ClientSlot>,
}

/// What the relay needs besides the connection: when the login must be over, and where an
/// accepted client takes its slot.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    pub deadline: Instant,
    pub admission: Option<&'a Admission>,
}

pub async fn relay(h: &mut Halves, packet: &[u8], ctx: &Arc<Context>, login: Login<'_>) -> Result<Authed, SessionError> {
    relay_until_ready(h, packet, ctx, true, login).await
}

/// As `relay`; with `forward_ready` false the final ReadyForQuery is held back, so the caller
/// can still refuse the client (the admin console checks its role list only after the
/// coordinator accepted the password).
pub async fn relay_until_ready(
    h: &mut Halves,
    packet: &[u8],
    ctx: &Arc<Context>,
    forward_ready: bool,
    login: Login<'_>,
) -> Result<Authed, SessionError> {
    let addr = ctx.connector.addr();
    let hung = ctx.config.upstream.connect_timeout;
    h.upstream_w.write_all(packet).await.map_err(SessionError::UpstreamIo)?;
    let mut out = BytesMut::with_capacity(1024);
    let mut registration = None;
    let mut parameters = Vec::new();
    loop {
        // Batch the coordinator's burst (AuthenticationOk, ParameterStatus…, Z) into one write.
        if !out.is_empty() && !h.upstream.has_frame() {
            flush(h, &mut out).await?;
        }
        let wait = login.deadline.min(Instant::now() + hung);
        let frame = match tokio::time::timeout_at(wait, h.upstream.next(MAX_AUTH_FRAME)).await {
            Ok(f) => f.map_err(|e| upstream_err(addr, e))?,
            Err(_) if Instant::now() >= login.deadline => return Err(SessionError::StartupTimeout(ctx.live().limits.startup_timeout)),
            Err(_) => {
                return Err(SessionError::Connect(ConnectError::Unreachable {
                    addr: addr.to_string(),
                    reason: format!("no answer during authentication within {hung:?} (upstream.connect_timeout)"),
                }))
            }
        };
        let (tag, body) = tag_and_body(&frame).map_err(|e| upstream_err(addr, e))?;
        match tag {
            b'R' => match classify(body) {
                Some(AuthRequest::Ok) | Some(AuthRequest::NoResponse) => out.extend_from_slice(&frame),
                Some(AuthRequest::NeedsResponse) => {
                    out.extend_from_slice(&frame);
                    answer_from_client(h, &mut out, ctx, login.deadline).await?;
                }
                Some(AuthRequest::SaslMechanisms) => {
                    match without_channel_binding(body) {
                        Some(filtered) => out.extend_from_slice(&filtered),
                        None => out.extend_from_slice(&frame),
                    }
                    answer_from_client(h, &mut out, ctx, login.deadline).await?;
                }
                None => return Err(SessionError::UpstreamLost(format!("{addr} (malformed authentication request)"))),
            },
            b'K' => {
                let key = CancelKey::decode(body).map_err(|e| SessionError::UpstreamLost(format!("{addr} ({e})")))?;
                let (client_key, reg) = ctx.cancels.register(key);
                out.extend_from_slice(&client_key.frame());
                registration = Some(reg);
            }
            b'E' => {
                // Wrong password, unknown database…: the client sees the coordinator's own error.
                out.extend_from_slice(&frame);
                flush(h, &mut out).await?;
                return Err(SessionError::Refused);
            }
            b'Z' => {
                // Accepted: only now does the client take one of the established clients' slots.
                let slot = match login.admission {
                    Some(a) => Some(a.try_client().ok_or(SessionError::TooManyClients(a.max_clients))?),
                    None => None,
                };
                if forward_ready {
                    out.extend_from_slice(&frame);
                }
                flush(h, &mut out).await?;
                return Ok(Authed { registration, parameters, slot });
            }
            b'S' => {
                if let Some(p) = crate::wire::parameter_status::decode(body) {
                    parameters.push((p.0.to_string(), p.1.to_string()));
                }
                out.extend_from_slice(&frame);
            }
            _ => out.extend_from_slice(&frame),
        }
    }
}

fn upstream_err(addr: &str, e: FrameError) -> SessionError {
    match e {
        FrameError::Io(e) => SessionError::UpstreamIo(e),
        FrameError::Eof => SessionError::UpstreamLost(addr.to_string()),
        other => SessionError::UpstreamLost(format!("{addr} ({other})")),
    }
}

fn client_err(e: FrameError) -> SessionError {
    match e {
        FrameError::Io(e) => SessionError::ClientIo(e),
        FrameError::Eof => SessionError::ClientIo(std::io::ErrorKind::UnexpectedEof.into()),
        other => SessionError::Protocol(format!("authentication message: {other}")),
    }
}

async fn flush(h: &mut Halves, out: &mut BytesMut) -> Result<(), SessionError> {
    h.client_w.write_all(out).await.map_err(SessionError::ClientIo)?;
    out.clear();
    Ok(())
}

/// Sends what is pending to the client, then relays its one answer (a `p` frame). Meanwhile
/// the coordinator is watched: if it gives up on the client (its own authentication timeout,
/// a restart) the client is told at once instead of waiting for the login deadline.
async fn answer_from_client(h: &mut Halves, out: &mut BytesMut, ctx: &Arc<Context>, deadline: Instant) -> Result<(), SessionError> {
    flush(h, out).await?;
    let addr = ctx.connector.addr();
    let answer = loop {
        // Both reads are cancel-safe: what either read stays in its reader's buffer.
        tokio::select! {
            answer = h.client.next(MAX_AUTH_ANSWER) => break answer.map_err(client_err)?,
            frame = h.upstream.next(MAX_AUTH_FRAME) => {
                let frame = frame.map_err(|e| upstream_err(addr, e))?;
                h.client_w.write_all(&frame).await.map_err(SessionError::ClientIo)?;
                if frame.first() == Some(&b'E') {
                    return Err(SessionError::Refused);
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Err(SessionError::StartupTimeout(ctx.live().limits.startup_timeout)),
        }
    };
    let (tag, _) = tag_and_body(&answer).map_err(client_err)?;
    match tag {
        b'p' => h.upstream_w.write_all(&answer).await.map_err(SessionError::UpstreamIo),
        // The client gave up (a driver closing on a missing password): not a violation.
        b'X' => Err(SessionError::ClientIo(std::io::ErrorKind::UnexpectedEof.into())),
        other => Err(SessionError::Protocol(format!("expected an authentication response, got message type {:?}", other as char))),
    }
}
