//! The server side of SCRAM-SHA-256 as PostgreSQL runs it, without I/O: no channel binding
//! (gs2 flags `n` and `y` accepted, `p=` refused), the client-first's user name ignored, and a
//! verified proof turned back into the ClientKey the proxy logs into servers with.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::scram_math::{auth_message, h, recover_client_key, same, server_signature, Key, KEY_LEN};
use super::{AuthError, FailReason, ScramVerifier};

/// Random bytes in the server's part of the nonce (PostgreSQL's SCRAM_RAW_NONCE_LEN).
const SERVER_NONCE_LEN: usize = 18;

/// After the server-first message: what the client-final message is checked against.
pub struct ServerExchange {
    verifier: ScramVerifier,
    /// A mock exchange (unknown user, or no SCRAM-capable secret) fails whatever the proof,
    /// for this reason.
    mock: Option<FailReason>,
    /// The `c=` value the client must send back: base64 of its own gs2 header.
    cbind: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

/// The outcome of a verified proof.
pub struct Verified {
    /// The server-final message (`v=<ServerSignature>`).
    pub server_final: String,
    pub client_key: Key,
}

impl ServerExchange {
    /// Reads the client-first message and builds the server-first one (returned by `server_first`).
    pub fn start(client_first: &[u8], verifier: ScramVerifier, mock: Option<FailReason>) -> Result<ServerExchange, AuthError> {
        let text = std::str::from_utf8(client_first).map_err(|_| AuthError::malformed("The message is not valid UTF-8."))?;
        let (gs2_header, bare) = split_gs2_header(text)?;
        let client_nonce = read_client_first_bare(bare)?;
        let mut raw = [0u8; SERVER_NONCE_LEN];
        getrandom::fill(&mut raw).map_err(|e| AuthError::protocol(format!("could not generate random nonce: {e}"), None))?;
        let nonce = format!("{client_nonce}{}", STANDARD.encode(raw));
        let server_first = format!("r={nonce},s={},i={}", STANDARD.encode(&verifier.salt), verifier.iterations);
        Ok(ServerExchange { verifier, mock, cbind: STANDARD.encode(gs2_header), nonce, client_first_bare: bare.to_string(), server_first })
    }

    pub fn server_first(&self) -> &str {
        &self.server_first
    }

    /// Checks the client-final message; `user` names the role in the failure message.
    pub fn finish(self, client_final: &[u8], user: &str) -> Result<Verified, AuthError> {
        let text = std::str::from_utf8(client_final).map_err(|_| AuthError::malformed("The message is not valid UTF-8."))?;
        // The proof is the last attribute; what precedes it is signed as sent.
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| AuthError::malformed("Proof is missing."))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| AuthError::malformed("Channel binding attribute \"c\" is missing."))?;
        if cbind != self.cbind {
            return Err(AuthError::protocol("SCRAM channel binding check failed", None));
        }
        let nonce =
            attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or_else(|| AuthError::malformed("Nonce attribute \"r\" is missing."))?;
        if !same(nonce.as_bytes(), self.nonce.as_bytes()) {
            return Err(AuthError::malformed("Nonce does not match."));
        }
        let proof: Key = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| <[u8; KEY_LEN]>::try_from(p.as_slice()).ok())
            .ok_or_else(|| AuthError::malformed("Malformed proof in client-final-message."))?;
        let failed = |reason| AuthError::Failed { user: user.to_string(), reason };
        if let Some(reason) = self.mock {
            return Err(failed(reason));
        }
        let am = auth_message(&self.client_first_bare, &self.server_first, without_proof);
        let client_key = recover_client_key(&self.verifier.stored_key, &proof, &am);
        if !same(&h(&client_key), &self.verifier.stored_key) {
            return Err(failed(FailReason::WrongPassword));
        }
        let server_final = format!("v={}", STANDARD.encode(server_signature(&self.verifier.server_key, &am)));
        Ok(Verified { server_final, client_key })
    }
}

/// Splits `gs2-header` (`n,,` / `y,,`) from client-first-message-bare.
fn split_gs2_header(text: &str) -> Result<(&str, &str), AuthError> {
    let flag_len = match text.as_bytes().first() {
        Some(b'n' | b'y') => 1,
        Some(b'p') => {
            return Err(AuthError::malformed(
                "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
            ))
        }
        _ => return Err(AuthError::malformed("Unexpected channel-binding flag.")),
    };
    let rest = text
        .get(flag_len..)
        .and_then(|r| r.strip_prefix(','))
        .ok_or_else(|| AuthError::malformed("Comma expected after the channel-binding flag."))?;
    if rest.starts_with("a=") {
        return Err(AuthError::protocol("client uses authorization identity, but it is not supported", None));
    }
    let bare = rest.strip_prefix(',').ok_or_else(|| AuthError::malformed("Unexpected attribute in the GS2 header."))?;
    let header_len = text.len() - bare.len();
    Ok((text.get(..header_len).unwrap_or_default(), bare))
}

/// The client nonce of client-first-message-bare (`n=<user>,r=<nonce>[,ext...]`).
fn read_client_first_bare(bare: &str) -> Result<&str, AuthError> {
    if bare.starts_with("m=") {
        return Err(AuthError::protocol("client requires an unsupported SCRAM extension", None));
    }
    let mut attrs = bare.split(',');
    // The user name is ignored: the StartupMessage's is the one that counts, as in PostgreSQL.
    attrs.next().filter(|a| a.starts_with("n=")).ok_or_else(|| AuthError::malformed("Attribute \"n\" expected."))?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or_else(|| AuthError::malformed("Attribute \"r\" expected."))?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(AuthError::malformed("Could not parse the client nonce."));
    }
    Ok(nonce)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::auth::scram_math::{client_proof, keys, salted_password};

    fn verifier(password: &str) -> (ScramVerifier, Key) {
        let salt = b"0123456789abcdef".to_vec();
        let (ck, sk) = keys(&salted_password(password.as_bytes(), &salt, 4096));
        (ScramVerifier { iterations: 4096, salt, stored_key: h(&ck), server_key: sk }, ck)
    }

    /// Plays the client: returns the client-final message for `client_key`.
    fn client_final(ex: &ServerExchange, bare: &str, cbind: &str, client_key: &Key) -> String {
        let nonce = ex.server_first().strip_prefix("r=").unwrap().split(',').next().unwrap();
        let without = format!("c={cbind},r={nonce}");
        let proof = client_proof(client_key, &auth_message(bare, ex.server_first(), &without));
        format!("{without},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn right_proof_recovers_the_client_key() {
        let (v, ck) = verifier("pencil");
        for (header, cbind) in [("n,,", "biws"), ("y,,", "eSws")] {
            let bare = "n=,r=abcDEF123";
            let ex = ServerExchange::start(format!("{header}{bare}").as_bytes(), v.clone(), None).unwrap();
            assert!(ex.server_first().starts_with("r=abcDEF123"));
            assert!(ex.server_first().ends_with(",s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096"));
            let fin = client_final(&ex, bare, cbind, &ck);
            let ok = ex.finish(fin.as_bytes(), "u").unwrap();
            assert_eq!(ok.client_key, ck);
            assert!(ok.server_final.starts_with("v="));
        }
    }

    #[test]
    fn wrong_proof_and_mock_fail_alike() {
        let (v, _) = verifier("pencil");
        let (_, wrong) = verifier("other");
        let (_, right) = verifier("pencil");
        let bare = "n=,r=nonce";
        for (key, mock) in [(wrong, None), (right, Some(FailReason::NoSecret))] {
            let ex = ServerExchange::start(format!("n,,{bare}").as_bytes(), v.clone(), mock).unwrap();
            let fin = client_final(&ex, bare, "biws", &key);
            let err = ex.finish(fin.as_bytes(), "alice").err().unwrap();
            assert_eq!(err.code(), "28P01");
            assert_eq!(err.to_string(), "password authentication failed for user \"alice\"");
            assert_eq!(err.log_detail(), Some(mock.unwrap_or(FailReason::WrongPassword).as_str()));
        }
    }

    #[test]
    fn malformed_messages_are_protocol_violations() {
        let (v, ck) = verifier("pencil");
        for bad in ["p=tls-server-end-point,,n=,r=x", "x,,n=,r=x", "n,a=bob,n=,r=x", "n,,r=x", "n,,n=,", "m=ext,n=,r=x", "n,,m=x,n=,r=x"] {
            let err = ServerExchange::start(bad.as_bytes(), v.clone(), None).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(err.code(), "08P01", "{bad}");
        }
        let bare = "n=,r=nonce";
        let start = || ServerExchange::start(format!("n,,{bare}").as_bytes(), v.clone(), None).unwrap();
        // Channel-binding data that does not match the header, a foreign nonce, a short proof.
        let ex = start();
        let fin = client_final(&ex, bare, "eSws", &ck);
        assert_eq!(ex.finish(fin.as_bytes(), "u").err().unwrap().code(), "08P01");
        let ex = start();
        let fin = format!("c=biws,r=nonceX,p={}", STANDARD.encode([0u8; 32]));
        assert_eq!(ex.finish(fin.as_bytes(), "u").err().unwrap().code(), "08P01");
        let ex = start();
        let nonce = ex.server_first().strip_prefix("r=").unwrap().split(',').next().unwrap().to_string();
        let fin = format!("c=biws,r={nonce},p=AAAA");
        assert_eq!(ex.finish(fin.as_bytes(), "u").err().unwrap().code(), "08P01");
        assert_eq!(start().finish(b"c=biws", "u").err().unwrap().code(), "08P01");
    }
}
