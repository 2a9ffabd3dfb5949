//! Proxy-side authentication for the pooled modes, where server connections are shared and the
//! proxy, not PostgreSQL, checks each client's password (as PgBouncer's auth_type, auth_file,
//! auth_user and auth_query do), then logs into PostgreSQL as the client's role.
//!
//! - [`Authenticator`] finds a role's [`Secret`] (`auth.file`, then `auth.query`) and runs the
//!   exchange `auth.type` asks for with the client, leaving a [`ServerCredential`].
//! - [`login_server`] logs a fresh server connection in with that credential. A SCRAM verifier
//!   alone cannot log in, but the ClientKey recovered from the client's proof can: the proxy
//!   passes it through (so no plaintext password need be stored anywhere).

mod authenticator;
mod error;
mod exchange;
mod login;
mod md5;
mod query;
mod scram_math;
mod scram_server;
mod secret;
pub mod userlist;

use std::fmt;

pub use authenticator::Authenticator;
pub use error::{AuthError, AuthSetupError, FailReason, LoginError};
pub use login::{login_server, ServerHello};
pub use secret::{ScramVerifier, Secret};

/// What the proxy may log into PostgreSQL with, as the client's role, after the client proved
/// itself.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerCredential {
    /// Nothing: the server must trust the connection.
    None,
    Plain(String),
    /// `md5` + 32 hex digits, passed through to an MD5 challenge.
    Md5(String),
    /// The client's ClientKey (recovered from its proof) and the verifier's ServerKey.
    ScramKeys {
        client_key: [u8; 32],
        server_key: [u8; 32],
    },
}

impl ServerCredential {
    /// What a stored secret alone can log in with (a SCRAM verifier cannot).
    pub fn from_secret(secret: Secret) -> ServerCredential {
        match secret {
            Secret::Plain(p) => ServerCredential::Plain(p),
            Secret::Md5(h) => ServerCredential::Md5(h),
            Secret::Scram(_) => ServerCredential::None,
        }
    }
}

// Credentials never reach a log line.
impl fmt::Debug for ServerCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerCredential({})", self.describe())
    }
}
