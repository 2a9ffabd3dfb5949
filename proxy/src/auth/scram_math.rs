//! The SCRAM-SHA-256 arithmetic (RFC 5802 §3): HMAC, H, XOR and the keys derived from a salted
//! password. Shared by the server side (verifying clients) and the client side (logging into
//! PostgreSQL with recovered keys).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes in every SCRAM-SHA-256 key and signature.
pub const KEY_LEN: usize = 32;

pub type Key = [u8; KEY_LEN];

/// HMAC-SHA-256 of `parts`, concatenated, under `key`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    // HMAC accepts keys of every length, so this never fails; the zero key is unreachable.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; KEY_LEN];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// SHA-256.
pub fn h(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

pub fn xor(a: &Key, b: &Key) -> Key {
    let mut out = *a;
    for (o, b) in out.iter_mut().zip(b) {
        *o ^= b;
    }
    out
}

/// Constant-time equality, so a failed proof says nothing about how close it was.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The AuthMessage both sides sign: client-first-bare, server-first, client-final-without-proof.
pub fn auth_message(client_first_bare: &str, server_first: &str, client_final_without_proof: &str) -> String {
    format!("{client_first_bare},{server_first},{client_final_without_proof}")
}

/// ClientKey from the client's proof: ClientProof XOR HMAC(StoredKey, AuthMessage). The proof
/// was right when H(ClientKey) equals StoredKey.
pub fn recover_client_key(stored_key: &Key, proof: &Key, auth_message: &str) -> Key {
    xor(proof, &hmac(stored_key, &[auth_message.as_bytes()]))
}

/// The proof a client holding `client_key` sends: ClientKey XOR HMAC(H(ClientKey), AuthMessage).
pub fn client_proof(client_key: &Key, auth_message: &str) -> Key {
    xor(client_key, &hmac(&h(client_key), &[auth_message.as_bytes()]))
}

/// ServerSignature: HMAC(ServerKey, AuthMessage).
pub fn server_signature(server_key: &Key, auth_message: &str) -> Key {
    hmac(server_key, &[auth_message.as_bytes()])
}

/// Hi(password, salt, i) of RFC 5802 (PBKDF2 with HMAC-SHA-256, one block). Only tests derive
/// keys from passwords here; the proxy lets postgres-protocol do it (with SASLprep).
#[cfg(test)]
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Key {
    let mut prev = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut acc = prev;
    for _ in 1..iterations {
        prev = hmac(password, &[&prev]);
        acc = xor(&acc, &prev);
    }
    acc
}

/// (ClientKey, ServerKey) of a salted password.
#[cfg(test)]
pub fn keys(salted: &Key) -> (Key, Key) {
    (hmac(salted, &[b"Client Key"]), hmac(salted, &[b"Server Key"]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    /// RFC 7677 §3: user "user", password "pencil".
    const CLIENT_FIRST_BARE: &str = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL_NO_PROOF: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_SIG: &str = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_keys() -> (Key, Key, String) {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let (ck, sk) = keys(&salted_password(b"pencil", &salt, 4096));
        (ck, sk, auth_message(CLIENT_FIRST_BARE, SERVER_FIRST, CLIENT_FINAL_NO_PROOF))
    }

    #[test]
    fn rfc7677_proof_and_signature() {
        let (ck, sk, am) = rfc_keys();
        assert_eq!(STANDARD.encode(client_proof(&ck, &am)), PROOF);
        assert_eq!(STANDARD.encode(server_signature(&sk, &am)), SERVER_SIG);
    }

    #[test]
    fn rfc7677_client_key_recovered_from_proof() {
        let (ck, _, am) = rfc_keys();
        let stored = h(&ck);
        let proof: Key = STANDARD.decode(PROOF).unwrap().try_into().unwrap();
        let recovered = recover_client_key(&stored, &proof, &am);
        assert_eq!(recovered, ck);
        assert!(same(&h(&recovered), &stored));
        // A different AuthMessage (another exchange) recovers garbage that fails the check.
        let other = recover_client_key(&stored, &proof, "n=user,r=x");
        assert!(!same(&h(&other), &stored));
    }
}
