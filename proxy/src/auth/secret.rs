//! A role's stored secret as PostgreSQL keeps it in `pg_authid.rolpassword` (and PgBouncer in its
//! userlist): a SCRAM-SHA-256 verifier, an MD5 hash, or plaintext.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::scram_math::{Key, KEY_LEN};

/// What the proxy knows of a role's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    /// `md5` followed by 32 lowercase hex digits: md5(password || user).
    Md5(String),
    Scram(ScramVerifier),
}

/// A SCRAM-SHA-256 verifier: enough to check a client's proof, not to compute one.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Key,
    pub server_key: Key,
}

// Secrets never reach a log line: Debug says only which kind it is.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Plain(_) => "Secret::Plain(..)",
            Secret::Md5(_) => "Secret::Md5(..)",
            Secret::Scram(_) => "Secret::Scram(..)",
        })
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl Secret {
    /// Reads a stored secret as PostgreSQL does (`get_password_type`): a well-formed SCRAM
    /// verifier, else `md5` + 32 hex digits, else plaintext.
    pub fn parse(stored: &str) -> Secret {
        if let Some(v) = ScramVerifier::parse(stored) {
            return Secret::Scram(v);
        }
        match stored.strip_prefix("md5") {
            // Lowercase only, as PostgreSQL checks (anything else is a plaintext password).
            Some(hex) if hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => Secret::Md5(stored.to_string()),
            _ => Secret::Plain(stored.to_string()),
        }
    }
}

impl ScramVerifier {
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 throughout.
    pub fn parse(stored: &str) -> Option<ScramVerifier> {
        let rest = stored.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iter_salt.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|&i| i > 0)?;
        let salt = STANDARD.decode(salt).ok()?;
        Some(ScramVerifier { iterations, salt, stored_key: key(stored_key)?, server_key: key(server_key)? })
    }

    /// The verifier of a plaintext password (random salt, PostgreSQL's 4096 iterations, SASLprep
    /// applied as PostgreSQL applies it).
    pub fn from_plain(password: &str) -> Option<ScramVerifier> {
        ScramVerifier::parse(&postgres_protocol::password::scram_sha_256(password.as_bytes()))
    }

    /// The text form, as in pg_authid.
    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

fn key(b64: &str) -> Option<Key> {
    let bytes = STANDARD.decode(b64).ok()?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::auth::scram_math::{h, keys, salted_password};

    #[test]
    fn parses_each_form() {
        let v = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        let Secret::Scram(s) = Secret::parse(v) else { panic!("not SCRAM") };
        assert_eq!(s.iterations, 4096);
        assert_eq!(s.salt.len(), 16);
        assert_eq!(s.to_text(), v);
        // The RFC 7677 user/pencil verifier.
        let (ck, sk) = keys(&salted_password(b"pencil", &s.salt, 4096));
        assert_eq!(h(&ck), s.stored_key);
        assert_eq!(sk, s.server_key);

        assert_eq!(Secret::parse("md5ab8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e"), Secret::Md5("md5ab8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e".into()));
        assert_eq!(Secret::parse("md5AB8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e"), Secret::Plain("md5AB8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e".into()));
        // Not 32 hex digits: plaintext that happens to start with md5.
        assert_eq!(Secret::parse("md5short"), Secret::Plain("md5short".into()));
        assert_eq!(Secret::parse("hunter2"), Secret::Plain("hunter2".into()));
        // A broken verifier is plaintext, as PostgreSQL reads it.
        assert_eq!(Secret::parse("SCRAM-SHA-256$x:y$z"), Secret::Plain("SCRAM-SHA-256$x:y$z".into()));
        assert_eq!(format!("{:?}", Secret::parse("hunter2")), "Secret::Plain(..)");
    }

    #[test]
    fn verifier_from_plain_checks_the_password() {
        let v = ScramVerifier::from_plain("pw-scram").unwrap();
        let (ck, sk) = keys(&salted_password(b"pw-scram", &v.salt, v.iterations));
        assert_eq!(h(&ck), v.stored_key);
        assert_eq!(sk, v.server_key);
    }
}
