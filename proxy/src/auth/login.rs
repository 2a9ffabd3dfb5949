//! Logging a fresh server connection in as the client's role, with the credential the client's
//! authentication left: cleartext, MD5 (from the password or, passed through, from its hash),
//! or SCRAM-SHA-256 (from the password, or passed through with the ClientKey recovered from the
//! client's proof and the verifier's ServerKey).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::scram_math::{auth_message, client_proof, same, server_signature, Key};
use super::{md5 as md5_answer, LoginError, ServerCredential};
use crate::session::frames::{tag_and_body, FrameReader};
use crate::wire::backend_key::CancelKey;
use crate::wire::cstr::Reader;
use crate::wire::frame::build;
use crate::wire::parameter_status;
use crate::wire::startup::StartupParams;

/// Largest server message read while logging in (ParameterStatus, errors, SASL data).
const MAX_LOGIN_MESSAGE: usize = 64 * 1024;

/// A logged-in server connection, at its first ReadyForQuery.
#[derive(Debug, Clone)]
pub struct ServerHello {
    pub key: CancelKey,
    pub parameters: Vec<(String, String)>,
}

/// Writes `startup_packet` (a whole StartupMessage), answers the server's authentication
/// request with `cred`, and reads up to ReadyForQuery, all within `timeout`.
pub async fn login_server<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    startup_packet: &[u8],
    cred: &ServerCredential,
    timeout: Duration,
) -> Result<ServerHello, LoginError> {
    tokio::time::timeout(timeout, login(reader, writer, startup_packet, cred)).await.map_err(|_| LoginError::Timeout)?
}

async fn login<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut FrameReader<R>,
    writer: &mut W,
    startup_packet: &[u8],
    cred: &ServerCredential,
) -> Result<ServerHello, LoginError> {
    // MD5 with a plaintext password salts with the user name, which only the packet holds.
    let user = startup_packet
        .get(8..)
        .and_then(|rest| StartupParams::decode(rest).ok())
        .and_then(|p| p.get("user").map(str::to_string))
        .unwrap_or_default();
    send(writer, startup_packet).await?;
    let mut scram: Option<ScramClient> = None;
    let mut key = None;
    let mut parameters = Vec::new();
    loop {
        let frame = reader.next(MAX_LOGIN_MESSAGE).await?;
        let (tag, body) = tag_and_body(&frame)?;
        match tag {
            b'R' => {
                let mut r = Reader::new(body, "Authentication");
                let code = r.i32().map_err(|e| LoginError::Protocol(e.to_string()))?;
                let data = r.remaining();
                match code {
                    0 => {}
                    3 => send(writer, &password_message(cleartext(cred)?.as_bytes())).await?,
                    5 => {
                        let salt: [u8; 4] =
                            data.try_into().map_err(|_| LoginError::Protocol("MD5 request without a 4-byte salt".into()))?;
                        let answer = match cred {
                            ServerCredential::Plain(p) => md5_answer::answer_from_plain(&user, p, salt),
                            ServerCredential::Md5(h) => md5_answer::answer_from_hash(h, salt),
                            other => return Err(unanswerable("an MD5 password", other)),
                        };
                        send(writer, &password_message(answer.as_bytes())).await?;
                    }
                    10 => {
                        let offered = data.split(|&b| b == 0).any(|m| m == b"SCRAM-SHA-256");
                        if !offered {
                            return Err(LoginError::Unanswerable(
                                "the server offers no SASL mechanism but SCRAM-SHA-256-PLUS or others".into(),
                            ));
                        }
                        let client = ScramClient::new(cred)?;
                        send(writer, &sasl_initial(client.first())).await?;
                        scram = Some(client);
                    }
                    11 => {
                        let client = scram.as_mut().ok_or_else(|| LoginError::Protocol("SASLContinue before SASL".into()))?;
                        let reply = client.update(data)?;
                        send(writer, &build(b'p', &reply)).await?;
                    }
                    12 => {
                        let client = scram.take().ok_or_else(|| LoginError::Protocol("SASLFinal before SASL".into()))?;
                        client.finish(data)?;
                    }
                    other => return Err(LoginError::Unanswerable(format!("authentication request code {other} is not supported"))),
                }
            }
            b'E' => return Err(LoginError::Server { frame }),
            b'S' => {
                if let Some((k, v)) = parameter_status::decode(body) {
                    parameters.push((k.to_string(), v.to_string()));
                }
            }
            b'K' => key = Some(CancelKey::decode(body).map_err(|e| LoginError::Protocol(e.to_string()))?),
            b'Z' => {
                let key = key.ok_or_else(|| LoginError::Protocol("no BackendKeyData before ReadyForQuery".into()))?;
                return Ok(ServerHello { key, parameters });
            }
            // NoticeResponse, NegotiateProtocolVersion: nothing to answer.
            _ => {}
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), LoginError> {
    writer.write_all(bytes).await?;
    writer.flush().await?;
    Ok(())
}

fn password_message(answer: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(answer.len() + 1);
    body.extend_from_slice(answer);
    body.push(0);
    build(b'p', &body)
}

fn sasl_initial(client_first: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(client_first.len() + 20);
    body.extend_from_slice(b"SCRAM-SHA-256\0");
    body.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    body.extend_from_slice(client_first);
    build(b'p', &body)
}

fn cleartext(cred: &ServerCredential) -> Result<&str, LoginError> {
    match cred {
        ServerCredential::Plain(p) => Ok(p),
        other => Err(unanswerable("a cleartext password", other)),
    }
}

fn unanswerable(asked: &str, cred: &ServerCredential) -> LoginError {
    LoginError::Unanswerable(format!("the server asks for {asked}, but the proxy holds {}", cred.describe()))
}

/// The SCRAM client: postgres-protocol's with a password, the proxy's own with recovered keys.
enum ScramClient {
    Password(Box<ScramSha256>),
    Keys(KeysClient),
}

struct KeysClient {
    client_key: Key,
    server_key: Key,
    nonce: String,
    first: Vec<u8>,
    /// Set once the server-first message was answered.
    auth_message: Option<String>,
}

impl ScramClient {
    fn new(cred: &ServerCredential) -> Result<ScramClient, LoginError> {
        Ok(match cred {
            // No channel binding: the proxy does not bind the exchange to its server TLS session.
            ServerCredential::Plain(p) => ScramClient::Password(Box::new(ScramSha256::new(p.as_bytes(), ChannelBinding::unsupported()))),
            ServerCredential::ScramKeys { client_key, server_key } => {
                let mut raw = [0u8; 18];
                getrandom::fill(&mut raw).map_err(|e| LoginError::Protocol(format!("no randomness for the SCRAM nonce: {e}")))?;
                let nonce = STANDARD.encode(raw);
                let first = format!("n,,n=,r={nonce}").into_bytes();
                ScramClient::Keys(KeysClient { client_key: *client_key, server_key: *server_key, nonce, first, auth_message: None })
            }
            other => return Err(unanswerable("SCRAM-SHA-256", other)),
        })
    }

    fn first(&self) -> &[u8] {
        match self {
            ScramClient::Password(s) => s.message(),
            ScramClient::Keys(k) => &k.first,
        }
    }

    /// The client-final message for the server-first `data`.
    fn update(&mut self, data: &[u8]) -> Result<Vec<u8>, LoginError> {
        match self {
            ScramClient::Password(s) => {
                s.update(data).map_err(|e| LoginError::Protocol(format!("SCRAM: {e}")))?;
                Ok(s.message().to_vec())
            }
            ScramClient::Keys(k) => {
                let server_first = std::str::from_utf8(data).map_err(|_| LoginError::Protocol("SCRAM server-first is not UTF-8".into()))?;
                let nonce = server_first
                    .split(',')
                    .find_map(|a| a.strip_prefix("r="))
                    .filter(|n| n.starts_with(&k.nonce) && n.len() > k.nonce.len())
                    .ok_or_else(|| LoginError::Protocol("SCRAM server-first has no valid nonce".into()))?;
                let without_proof = format!("c=biws,r={nonce}");
                // The salt and iteration count are the verifier's, which the keys came from.
                let am = auth_message(&format!("n=,r={}", k.nonce), server_first, &without_proof);
                let proof = client_proof(&k.client_key, &am);
                k.auth_message = Some(am);
                Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
            }
        }
    }

    /// Checks the server's signature in server-final `data`.
    fn finish(self, data: &[u8]) -> Result<(), LoginError> {
        match self {
            ScramClient::Password(mut s) => s.finish(data).map_err(|e| LoginError::Protocol(format!("SCRAM server signature: {e}"))),
            ScramClient::Keys(k) => {
                let am = k.auth_message.ok_or_else(|| LoginError::Protocol("SASLFinal before SASLContinue".into()))?;
                let sig = std::str::from_utf8(data)
                    .ok()
                    .and_then(|t| t.split(',').find_map(|a| a.strip_prefix("v=")))
                    .and_then(|v| STANDARD.decode(v).ok())
                    .ok_or_else(|| LoginError::Protocol("SCRAM server-final has no signature".into()))?;
                if !same(&sig, &server_signature(&k.server_key, &am)) {
                    return Err(LoginError::Protocol("SCRAM server signature does not match".into()));
                }
                Ok(())
            }
        }
    }
}

/// Shown in errors only as the kind of credential, never its value.
impl ServerCredential {
    pub fn describe(&self) -> &'static str {
        match self {
            ServerCredential::None => "no password",
            ServerCredential::Plain(_) => "a plaintext password",
            ServerCredential::Md5(_) => "an MD5 hash",
            ServerCredential::ScramKeys { .. } => "SCRAM keys",
        }
    }
}
