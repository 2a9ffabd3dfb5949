//! The client-facing messages of an authentication exchange: the proxy's Authentication
//! requests and the client's `p` answers (SASLInitialResponse, SASLResponse, PasswordMessage).

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::scram_math::Key;
use super::scram_server::ServerExchange;
use super::{md5 as md5_answer, scram_math, AuthError, FailReason, ScramVerifier, Secret, ServerCredential};
use crate::session::frames::{tag_and_body, FrameReader};
use crate::wire::cstr::Reader;
use crate::wire::frame::{build, SMALL_MESSAGE_LIMIT};

const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

// Authentication request codes (the int32 after 'R').
const AUTH_OK: i32 = 0;
const AUTH_MD5: i32 = 5;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;

fn request(code: i32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + data.len());
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(data);
    build(b'R', &body)
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> Result<(), AuthError> {
    writer.write_all(frame).await?;
    writer.flush().await?;
    Ok(())
}

pub async fn send_ok<W: AsyncWrite + Unpin>(writer: &mut W) -> Result<(), AuthError> {
    send(writer, &request(AUTH_OK, &[])).await
}

/// The body of the client's next `p` message; `what` names it in PostgreSQL's words.
async fn read_p<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>, what: &str) -> Result<Vec<u8>, AuthError> {
    let frame = reader.next(SMALL_MESSAGE_LIMIT + 1).await?;
    let (tag, body) = tag_and_body(&frame)?;
    if tag != b'p' {
        return Err(AuthError::protocol(format!("expected {what} response, got message type {tag}"), None));
    }
    Ok(body.to_vec())
}

/// SCRAM-SHA-256 against `verifier`; with `mock` set, a mock exchange that fails at the proof
/// for that reason. Returns the ClientKey
/// recovered from the client's proof; the caller sends AuthenticationOk.
pub async fn scram<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    user: &str,
    verifier: ScramVerifier,
    mock: Option<FailReason>,
) -> Result<Key, AuthError> {
    let mut mechanisms = Vec::with_capacity(SCRAM_SHA_256.len() + 2);
    mechanisms.extend_from_slice(SCRAM_SHA_256.as_bytes());
    mechanisms.extend_from_slice(&[0, 0]);
    send(writer, &request(AUTH_SASL, &mechanisms)).await?;

    let initial = read_p(reader, "SASL").await?;
    let malformed = || AuthError::protocol("malformed SASLInitialResponse message", None);
    let mut r = Reader::new(&initial, "SASLInitialResponse");
    let mechanism = r.cstr().map_err(|_| malformed())?;
    if mechanism != SCRAM_SHA_256.as_bytes() {
        return Err(AuthError::protocol("client selected an invalid SASL authentication mechanism", None));
    }
    let len = r.i32().map_err(|_| malformed())?;
    let client_first = usize::try_from(len).ok().and_then(|n| r.bytes(n).ok()).ok_or_else(malformed)?;
    r.finish().map_err(|_| malformed())?;

    let ex = ServerExchange::start(client_first, verifier, mock)?;
    send(writer, &request(AUTH_SASL_CONTINUE, ex.server_first().as_bytes())).await?;

    let client_final = read_p(reader, "SASL").await?;
    let verified = ex.finish(&client_final, user)?;
    send(writer, &request(AUTH_SASL_FINAL, verified.server_final.as_bytes())).await?;
    Ok(verified.client_key)
}

/// MD5 against a plaintext or MD5 secret (no secret: the challenge is still sent, and fails).
pub async fn md5<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    user: &str,
    secret: Option<Secret>,
) -> Result<ServerCredential, AuthError> {
    let mut salt = [0u8; 4];
    getrandom::fill(&mut salt).map_err(|e| AuthError::protocol(format!("could not generate random MD5 salt: {e}"), None))?;
    send(writer, &request(AUTH_MD5, &salt)).await?;
    let body = read_p(reader, "password").await?;
    let mut r = Reader::new(&body, "PasswordMessage");
    let answer = r.cstr().ok().filter(|_| r.finish().is_ok()).ok_or_else(|| AuthError::protocol("invalid password packet size", None))?;
    let (expected, credential) = match secret {
        Some(Secret::Plain(p)) => (md5_answer::answer_from_plain(user, &p, salt), ServerCredential::Plain(p)),
        Some(Secret::Md5(h)) => (md5_answer::answer_from_hash(&h, salt), ServerCredential::Md5(h)),
        // Not reached with a SCRAM verifier (the caller runs SCRAM then, as PostgreSQL does).
        Some(Secret::Scram(_)) | None => return Err(AuthError::Failed { user: user.to_string(), reason: FailReason::NoSecret }),
    };
    if !scram_math::same(answer, expected.as_bytes()) {
        return Err(AuthError::Failed { user: user.to_string(), reason: FailReason::WrongPassword });
    }
    Ok(credential)
}
