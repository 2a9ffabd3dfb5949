//! MD5 challenge answers: `md5` + md5(md5(password || user) as hex || salt).

use md5::{Digest, Md5};

/// The answer to an MD5 challenge from the stored hash (`md5` + 32 hex digits), which is all
/// the second round needs: this is how an MD5 secret logs in without the password.
pub fn answer_from_hash(stored: &str, salt: [u8; 4]) -> String {
    let inner = stored.strip_prefix("md5").unwrap_or(stored);
    let mut md5 = Md5::new();
    md5.update(inner.as_bytes());
    md5.update(salt);
    format!("md5{}", hex(&md5.finalize()))
}

/// The answer to an MD5 challenge from the plaintext password.
pub fn answer_from_plain(user: &str, password: &str, salt: [u8; 4]) -> String {
    postgres_protocol::authentication::md5_hash(user.as_bytes(), password.as_bytes(), salt)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_plain_answers_agree() {
        let salt = [0x2a, 0x3d, 0x8f, 0xe0];
        let stored = postgres_protocol::password::md5(b"password", "md5_user");
        assert_eq!(answer_from_hash(&stored, salt), answer_from_plain("md5_user", "password", salt));
        // postgres-protocol's own test vector for this user, password and salt.
        assert_eq!(answer_from_plain("md5_user", "password", salt), "md562af4dd09bbb41884907a838a3233294");
    }
}
