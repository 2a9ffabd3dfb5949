//! `R` Authentication requests relayed from the coordinator.

/// What an Authentication message asks of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest {
    Ok,
    /// The client must answer with one PasswordMessage-family (`p`) frame.
    NeedsResponse,
    /// SASL mechanisms offered (code 10): the client answers, but the list may need filtering.
    SaslMechanisms,
    /// SASLFinal and other codes that expect no answer.
    NoResponse,
}

pub fn classify(body: &[u8]) -> Option<AuthRequest> {
    let code = i32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    Some(match code {
        0 => AuthRequest::Ok,
        // cleartext, MD5, GSS, GSS continue, SSPI, SASL continue
        3 | 5 | 7 | 8 | 9 | 11 => AuthRequest::NeedsResponse,
        10 => AuthRequest::SaslMechanisms,
        _ => AuthRequest::NoResponse,
    })
}

/// Drops `-PLUS` (channel-binding) SASL mechanisms from an AuthenticationSASL body: the binding
/// would tie the client to the proxy-to-coordinator TLS session, which the client cannot see.
/// Returns the new frame, or None if nothing had to change.
pub fn without_channel_binding(body: &[u8]) -> Option<Vec<u8>> {
    let list = body.get(4..)?;
    let mechs: Vec<&[u8]> = list.split(|&b| b == 0).filter(|m| !m.is_empty()).collect();
    if !mechs.iter().any(|m| m.ends_with(b"-PLUS")) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(&10i32.to_be_bytes());
    for m in mechs.iter().filter(|m| !m.ends_with(b"-PLUS")) {
        out.extend_from_slice(m);
        out.push(0);
    }
    out.push(0);
    Some(super::frame::build(b'R', &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_plus_mechanisms() {
        let body = b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        let frame = without_channel_binding(body).expect("changed");
        assert_eq!(&frame[5..], b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        assert_eq!(without_channel_binding(b"\0\0\0\x0aSCRAM-SHA-256\0\0"), None);
        assert_eq!(classify(b"\0\0\0\x05salt"), Some(AuthRequest::NeedsResponse));
        assert_eq!(classify(b"\0\0"), None);
    }
}
