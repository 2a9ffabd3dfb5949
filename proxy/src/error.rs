//! Why a session ended, and what (if anything) the client is told: every client-visible error is
//! an ErrorResponse with a SQLSTATE.

use bytes::BytesMut;

use crate::net::upstream::ConnectError;
use crate::wire::error_response::{encode, Severity};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("unsupported frontend protocol {0}.{1}: the proxy supports 3.0 to 3.2")]
    UnsupportedProtocol(u16, u16),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("lost the connection to upstream {0}")]
    UpstreamLost(String),
    #[error("client TLS handshake failed: {0}")]
    ClientTls(String),
    #[error("client connection error: {0}")]
    ClientIo(std::io::Error),
    #[error("upstream connection error: {0}")]
    UpstreamIo(std::io::Error),
    #[error("login did not finish within {0:?} (limits.startup_timeout)")]
    StartupTimeout(std::time::Duration),
    #[error("sorry, too many clients already (limits.max_client_connections = {0})")]
    TooManyClients(u32),
    #[error("sorry, too many connections logging in at once (limits.max_logins_in_progress = {0})")]
    TooManyLogins(u32),
    #[error("terminating connection due to idle-session timeout")]
    IdleTimeout,
    #[error("terminating connection because the proxy is shutting down")]
    Shutdown,
    /// The proxy refused a pooled client's login (wrong password…); the ErrorResponse it gets.
    #[error("authentication failed: {}", crate::pool::describe_error(.0.get(5..).unwrap_or_default()))]
    Auth(BytesMut),
    /// KILL on the admin console (PostgreSQL's admin_shutdown SQLSTATE, as pg_terminate_backend).
    #[error("terminating connection due to administrator command (KILL on the proxy's admin console)")]
    Killed,
    /// A pooled client could not get a server connection; the ErrorResponse it gets.
    #[error("no server connection: {}", crate::pool::describe_error(.0.get(5..).unwrap_or_default()))]
    Pool(BytesMut),
    /// The coordinator refused the startup; its own ErrorResponse was already relayed.
    #[error("the coordinator refused the connection")]
    Refused,
}

impl SessionError {
    /// SQLSTATE sent to the client, or None when the client is gone or must not be written to.
    pub fn sqlstate(&self) -> Option<&'static str> {
        Some(match self {
            SessionError::Protocol(_) | SessionError::StartupTimeout(_) => "08P01",
            SessionError::UnsupportedProtocol(..) => "0A000",
            SessionError::Connect(_) => "08001",
            SessionError::UpstreamLost(_) | SessionError::UpstreamIo(_) => "08006",
            SessionError::TooManyClients(_) | SessionError::TooManyLogins(_) => "53300",
            SessionError::IdleTimeout => "57P05",
            SessionError::Shutdown | SessionError::Killed => "57P01",
            SessionError::Pool(_) => "53300",
            SessionError::Auth(_) => "28P01",
            SessionError::ClientTls(_) | SessionError::ClientIo(_) | SessionError::Refused => return None,
        })
    }

    /// The FATAL ErrorResponse for the client.
    pub fn to_client(&self) -> Option<BytesMut> {
        if let SessionError::Pool(msg) | SessionError::Auth(msg) = self {
            return Some(msg.clone());
        }
        self.sqlstate().map(|code| encode(Severity::Fatal, code, &self.to_string(), None))
    }
}
