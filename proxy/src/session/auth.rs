//! Authentication passthrough: the startup packet goes to the coordinator unchanged and every
//! authentication exchange is relayed, so the client proves itself to the coordinator with
//! whatever method it asks for. Only two frames are changed on the way: BackendKeyData (the
//! client gets the proxy's own cancel key) and a SASL offer (channel binding removed).

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::frames::FrameError;
use super::relay::Halves;
use crate::cancel::Registration;
use crate::context::Context;
use crate::error::SessionError;
use crate::wire::auth::{classify, without_channel_binding, AuthRequest};
use crate::wire::backend_key::CancelKey;
use crate::wire::frame::HEADER_LEN;

/// Authentication messages are small; anything bigger from the coordinator is not one.
const MAX_AUTH_FRAME: usize = 1 << 20;

pub struct Authed {
    pub registration: Option<Registration>,
    /// The ParameterStatus values the coordinator reported while the session started.
    pub parameters: Vec<(String, String)>,
}

pub async fn relay(h: &mut Halves, packet: &[u8], ctx: &Arc<Context>) -> Result<Authed, SessionError> {
    relay_until_ready(h, packet, ctx, true).await
}

/// As `relay`; with `forward_ready` false the final ReadyForQuery is held back, so the caller
/// can still refuse the client (the admin console checks its role list only after the
/// coordinator accepted the password).
pub async fn relay_until_ready(h: &mut Halves, packet: &[u8], ctx: &Arc<Context>, forward_ready: bool) -> Result<Authed, SessionError> {
    let addr = ctx.connector.addr();
    let up_err = |e: FrameError| match e {
        FrameError::Io(e) => SessionError::UpstreamIo(e),
        FrameError::Eof => SessionError::UpstreamLost(addr.to_string()),
        other => SessionError::UpstreamLost(format!("{addr} ({other})")),
    };
    h.upstream_w.write_all(packet).await.map_err(SessionError::UpstreamIo)?;
    let mut out = BytesMut::with_capacity(1024);
    let mut registration = None;
    let mut parameters = Vec::new();
    loop {
        // Batch the coordinator's burst (AuthenticationOk, ParameterStatus…, Z) into one write.
        if !out.is_empty() && !h.upstream.has_frame() {
            flush(h, &mut out).await?;
        }
        let frame = h.upstream.next(MAX_AUTH_FRAME).await.map_err(up_err)?;
        let body = &frame[HEADER_LEN..];
        match frame[0] {
            b'R' => match classify(body) {
                Some(AuthRequest::Ok) | Some(AuthRequest::NoResponse) => out.extend_from_slice(&frame),
                Some(AuthRequest::NeedsResponse) => {
                    out.extend_from_slice(&frame);
                    answer_from_client(h, &mut out, ctx).await?;
                }
                Some(AuthRequest::SaslMechanisms) => {
                    match without_channel_binding(body) {
                        Some(filtered) => out.extend_from_slice(&filtered),
                        None => out.extend_from_slice(&frame),
                    }
                    answer_from_client(h, &mut out, ctx).await?;
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
                if forward_ready {
                    out.extend_from_slice(&frame);
                }
                flush(h, &mut out).await?;
                return Ok(Authed { registration, parameters });
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

async fn flush(h: &mut Halves, out: &mut BytesMut) -> Result<(), SessionError> {
    h.client_w.write_all(out).await.map_err(SessionError::ClientIo)?;
    out.clear();
    Ok(())
}

/// Sends what is pending to the client, then relays its one answer (a `p` frame).
async fn answer_from_client(h: &mut Halves, out: &mut BytesMut, ctx: &Arc<Context>) -> Result<(), SessionError> {
    flush(h, out).await?;
    let max = ctx.live().limits.max_message_size as usize + 1;
    let answer = h.client.next(max).await.map_err(|e| match e {
        FrameError::Io(e) => SessionError::ClientIo(e),
        FrameError::Eof => SessionError::ClientIo(std::io::ErrorKind::UnexpectedEof.into()),
        other => SessionError::Protocol(other.to_string()),
    })?;
    if answer[0] != b'p' {
        return Err(SessionError::Protocol(format!(
            "expected an authentication response, got message type {:?}",
            answer[0] as char
        )));
    }
    h.upstream_w.write_all(&answer).await.map_err(SessionError::UpstreamIo)
}
