//! The proxy's authentication of clients in pooled modes: where secrets come from (`auth.file`,
//! then `auth.query`), and the exchange `auth.type` asks for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::query::SecretQuery;
use super::{exchange, userlist, AuthError, AuthSetupError, FailReason, ScramVerifier, Secret, ServerCredential};
use crate::config::{AuthType, Config, SslMode};
use crate::session::frames::FrameReader;

/// Built once at start from the configuration.
pub struct Authenticator {
    kind: AuthType,
    file: HashMap<String, Secret>,
    query: Option<SecretQuery>,
    /// SCRAM verifiers derived from plaintext secrets, by user, with the plaintext they were
    /// derived from (a changed password derives a new one). Deriving costs 4096 HMAC rounds.
    derived: Mutex<HashMap<String, (String, ScramVerifier)>>,
    /// Per-process key for the mock SCRAM salts of unknown users (stable per user name, so a
    /// client cannot tell unknown users from known ones by a changing salt).
    mock_key: [u8; 32],
}

impl Authenticator {
    pub fn from_config(config: &Config) -> Result<Authenticator, AuthSetupError> {
        let auth = &config.auth;
        let file = if auth.file.is_empty() {
            HashMap::new()
        } else {
            let text = std::fs::read_to_string(&auth.file)
                .map_err(|e| AuthSetupError { key: "auth.file", message: format!("cannot read {}: {e}", auth.file) })?;
            userlist::parse(&text).map_err(|message| AuthSetupError { key: "auth.file", message: format!("{}: {message}", auth.file) })?
        };
        let query = if auth.user.is_empty() {
            None
        } else {
            if auth.query.trim().is_empty() {
                return Err(AuthSetupError { key: "auth.query", message: "empty, but `auth.user` is set to run it".into() });
            }
            Some(secret_query(config, &file)?)
        };
        if auth.kind != AuthType::Trust && file.is_empty() && query.is_none() {
            return Err(AuthSetupError {
                key: "auth.type",
                message: "checking passwords needs a secret source: set `auth.file` (with entries) or `auth.user`".into(),
            });
        }
        let mut mock_key = [0u8; 32];
        getrandom::fill(&mut mock_key).map_err(|e| AuthSetupError { key: "auth.type", message: format!("no randomness: {e}") })?;
        Ok(Authenticator { kind: auth.kind, file, query, derived: Mutex::default(), mock_key })
    }

    pub fn kind(&self) -> AuthType {
        self.kind
    }

    /// The secret of `user`: `auth.file` first, then `auth.query` as `auth.user`. `database` is
    /// accepted for a future per-database lookup; secrets are cluster-wide in PostgreSQL.
    pub async fn secret(&self, user: &str, _database: &str) -> Result<Option<Secret>, AuthError> {
        if let Some(s) = self.file.get(user) {
            return Ok(Some(s.clone()));
        }
        let Some(query) = &self.query else { return Ok(None) };
        query.lookup(user).await.map_err(|reason| AuthError::Lookup { user: user.to_string(), reason })
    }

    /// Runs the whole exchange with a client whose StartupMessage was read: the challenge
    /// `auth.type` asks for, the client's answers, and AuthenticationOk on success (the caller
    /// then sends ParameterStatus, BackendKeyData and ReadyForQuery). On failure the caller
    /// sends `AuthError::to_client` and closes. Returns what to log into servers with.
    pub async fn authenticate_client<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        reader: &mut FrameReader<R>,
        writer: &mut W,
        user: &str,
        database: &str,
    ) -> Result<ServerCredential, AuthError> {
        let secret = self.secret(user, database).await?;
        let credential = match self.kind {
            AuthType::Trust => secret.map_or(ServerCredential::None, ServerCredential::from_secret),
            // PostgreSQL's md5 method runs SCRAM when the stored secret is a SCRAM verifier.
            AuthType::Md5 if !matches!(secret, Some(Secret::Scram(_))) => exchange::md5(reader, writer, user, secret).await?,
            AuthType::Md5 | AuthType::ScramSha256 => {
                let (verifier, mock) = match &secret {
                    Some(Secret::Scram(v)) => (v.clone(), None),
                    Some(Secret::Plain(p)) => (self.verifier_of_plain(user, p)?, None),
                    // No secret, or only an MD5 hash, which cannot check a SCRAM proof.
                    Some(Secret::Md5(_)) => (self.mock_verifier(user), Some(FailReason::Md5SecretUnderScram)),
                    None => (self.mock_verifier(user), Some(FailReason::NoSecret)),
                };
                let client_key = exchange::scram(reader, writer, user, verifier.clone(), mock).await?;
                match secret {
                    Some(Secret::Plain(p)) => ServerCredential::Plain(p),
                    _ => ServerCredential::ScramKeys { client_key, server_key: verifier.server_key },
                }
            }
        };
        exchange::send_ok(writer).await?;
        Ok(credential)
    }

    fn verifier_of_plain(&self, user: &str, password: &str) -> Result<ScramVerifier, AuthError> {
        let cached = {
            let derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
            derived.get(user).filter(|(plain, _)| plain == password).map(|(_, v)| v.clone())
        };
        if let Some(v) = cached {
            return Ok(v);
        }
        // Derived outside the lock: 4096 HMAC rounds should not hold up other logins.
        let v = ScramVerifier::from_plain(password).ok_or_else(|| AuthError::protocol("could not derive a SCRAM verifier", None))?;
        self.derived.lock().unwrap_or_else(|p| p.into_inner()).insert(user.to_string(), (password.to_string(), v.clone()));
        Ok(v)
    }

    /// A verifier no proof matches, with a salt that stays the same for a given user name.
    fn mock_verifier(&self, user: &str) -> ScramVerifier {
        use super::scram_math::{h, hmac};
        let digest = hmac(&self.mock_key, &[user.as_bytes()]);
        let salt = digest.get(..16).unwrap_or(&digest).to_vec();
        ScramVerifier { iterations: 4096, salt, stored_key: h(&digest), server_key: h(&self.mock_key) }
    }
}

/// The `auth.query` connection: `upstream.url`'s address, database and sslmode, as `auth.user`
/// with its plaintext from `auth.file`, else `upstream.url`'s password.
fn secret_query(config: &Config, file: &HashMap<String, Secret>) -> Result<SecretQuery, AuthSetupError> {
    let url = config.upstream_url();
    let mode = config.upstream_sslmode();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&url.host)
        .port(url.port)
        .user(&config.auth.user)
        .dbname(url.effective_database())
        .application_name("citus-proxy auth_query")
        .connect_timeout(config.upstream.connect_timeout.max(Duration::from_millis(100)))
        .ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
    match file.get(&config.auth.user) {
        Some(Secret::Plain(p)) => {
            pg.password(p);
        }
        _ => {
            if let Some(p) = &url.password {
                pg.password(p);
            }
        }
    }
    let ca = (!config.upstream.ca_file.is_empty()).then(|| std::path::Path::new(&config.upstream.ca_file));
    let tls = crate::net::tls::client_config(mode, ca).map_err(|e| AuthSetupError { key: "upstream.sslmode", message: e.to_string() })?;
    Ok(SecretQuery::new(pg, tls, config.auth.query.clone()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bare() -> Authenticator {
        Authenticator { kind: AuthType::ScramSha256, file: HashMap::new(), query: None, derived: Mutex::default(), mock_key: [9; 32] }
    }

    #[test]
    fn derived_verifiers_are_cached_per_user_and_password() {
        let a = bare();
        let first = a.verifier_of_plain("u", "pw").unwrap();
        assert_eq!(a.verifier_of_plain("u", "pw").unwrap(), first);
        // A changed password derives a new verifier (new salt).
        assert_ne!(a.verifier_of_plain("u", "pw2").unwrap().salt, first.salt);
    }

    #[test]
    fn mock_salts_are_stable_per_user() {
        let a = bare();
        assert_eq!(a.mock_verifier("ghost").salt, a.mock_verifier("ghost").salt);
        assert_ne!(a.mock_verifier("ghost").salt, a.mock_verifier("other").salt);
        assert_eq!(a.mock_verifier("ghost").salt.len(), 16);
    }
}
