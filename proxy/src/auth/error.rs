//! What can go wrong authenticating a client, setting the authenticator up, and logging into a
//! server. Client-visible errors are worded as PostgreSQL words them.

use bytes::BytesMut;

use crate::session::frames::FrameError;
use crate::wire::error_response::{self, Severity};

/// A client's authentication failed; `to_client` is the ErrorResponse to send before closing.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, unknown user, or a user without a usable secret: one message for all,
    /// so a client cannot tell which.
    #[error("password authentication failed for user \"{user}\"")]
    Failed { user: String, reason: FailReason },
    /// The client broke the protocol (a malformed SASL message, a wrong message type).
    #[error("{message}")]
    Protocol { message: String, detail: Option<String> },
    /// The secret could not be fetched (auth.query failed); `reason` is for the log only.
    #[error("cannot look up the secret of user \"{user}\": {reason}")]
    Lookup { user: String, reason: String },
    /// The client went away or its stream failed mid-exchange.
    #[error("client connection: {0}")]
    Client(#[from] FrameError),
}

/// Why a password check failed: for the proxy's log only (the client is told the same thing in
/// every case, as PostgreSQL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    WrongPassword,
    /// Neither `auth.file` nor `auth.query` has a secret for the role (unknown, or no password).
    NoSecret,
    /// The stored secret is an MD5 hash, which cannot check a SCRAM-SHA-256 proof.
    Md5SecretUnderScram,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::WrongPassword => "password does not match",
            FailReason::NoSecret => "no secret for the role (unknown role, or no password)",
            FailReason::Md5SecretUnderScram => "the stored secret is an MD5 hash, which cannot check SCRAM-SHA-256",
        }
    }
}

impl AuthError {
    /// What the proxy's log should add to the error (never a secret): why a password check failed.
    pub fn log_detail(&self) -> Option<&'static str> {
        match self {
            AuthError::Failed { reason, .. } => Some(reason.as_str()),
            _ => None,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>, detail: Option<&str>) -> AuthError {
        AuthError::Protocol { message: message.into(), detail: detail.map(str::to_string) }
    }

    pub(crate) fn malformed(detail: &str) -> AuthError {
        AuthError::protocol("malformed SCRAM message", Some(detail))
    }

    /// The SQLSTATE of the client-visible error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Failed { .. } => "28P01",
            AuthError::Protocol { .. } | AuthError::Client(_) => "08P01",
            AuthError::Lookup { .. } => "08006",
        }
    }

    /// The FATAL ErrorResponse for the client. A lookup failure does not say why (that goes to
    /// the proxy's log), as it would describe the proxy's own connection.
    pub fn to_client(&self) -> BytesMut {
        let code = self.code();
        match self {
            AuthError::Failed { .. } => error_response::encode(Severity::Fatal, code, &self.to_string(), None),
            AuthError::Protocol { message, detail } => error_response::encode(Severity::Fatal, code, message, detail.as_deref()),
            AuthError::Lookup { user, .. } => {
                error_response::encode(Severity::Fatal, code, &format!("could not look up the password of user \"{user}\""), None)
            }
            AuthError::Client(e) => error_response::encode(Severity::Fatal, code, &format!("invalid frontend message: {e}"), None),
        }
    }
}

/// `Authenticator::from_config` failed; names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct AuthSetupError {
    pub key: &'static str,
    pub message: String,
}

/// Logging a server connection in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The server refused with an ErrorResponse; `frame` is that whole frame, to relay as is.
    #[error("server refused the login: {}", server_message(.frame))]
    Server { frame: BytesMut },
    /// The server asked for something this credential cannot answer (e.g. a cleartext password
    /// when only a verifier is known), or a method the proxy does not speak.
    #[error("cannot answer the server's authentication request: {0}")]
    Unanswerable(String),
    /// The server broke the protocol, or its SCRAM signature did not check out.
    #[error("server protocol error during login: {0}")]
    Protocol(String),
    #[error("server connection: {0}")]
    Io(#[from] FrameError),
    #[error("server login timed out")]
    Timeout,
}

impl LoginError {
    /// The server's SQLSTATE, for `Server`.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            LoginError::Server { frame } => frame.get(5..).and_then(error_response::sqlstate).and_then(|c| std::str::from_utf8(c).ok()),
            _ => None,
        }
    }
}

fn server_message(frame: &[u8]) -> String {
    let body = frame.get(5..).unwrap_or_default();
    let text = |c| error_response::field(body, c).map(String::from_utf8_lossy).unwrap_or_default();
    format!("{} ({})", text(b'M'), text(b'C'))
}

impl From<std::io::Error> for LoginError {
    fn from(e: std::io::Error) -> Self {
        LoginError::Io(FrameError::Io(e))
    }
}

impl From<std::io::Error> for AuthError {
    fn from(e: std::io::Error) -> Self {
        AuthError::Client(FrameError::Io(e))
    }
}
