//! `E` ErrorResponse / `N` NoticeResponse: building the proxy's own, and reading the SQLSTATE and
//! severity of the backend's without decoding the rest.

use bytes::BytesMut;
use pgwire::messages::response::{ErrorResponse, NoticeResponse};
use pgwire::messages::Message;

/// Severity of a message the proxy originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Notice,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Notice => "NOTICE",
        }
    }
}

/// Encodes an ErrorResponse (or a NoticeResponse for `Severity::Notice`) with SQLSTATE `code`.
pub fn encode(severity: Severity, code: &str, message: &str, detail: Option<&str>) -> BytesMut {
    let sev = severity.as_str().to_string();
    let mut fields = vec![(b'S', sev.clone()), (b'V', sev), (b'C', code.to_string()), (b'M', message.to_string())];
    if let Some(d) = detail {
        fields.push((b'D', d.to_string()));
    }
    let mut buf = BytesMut::with_capacity(64 + message.len());
    // Encoding into a BytesMut only fails for oversize messages, which ours never are.
    let res = if severity == Severity::Notice {
        NoticeResponse::new(fields).encode(&mut buf)
    } else {
        ErrorResponse::new(fields).encode(&mut buf)
    };
    if res.is_err() {
        buf.clear();
    }
    buf
}

/// One field of an ErrorResponse/NoticeResponse body, without allocating.
pub fn field(body: &[u8], code: u8) -> Option<&[u8]> {
    let mut rest = body;
    while let Some((&tag, tail)) = rest.split_first() {
        if tag == 0 {
            return None;
        }
        // An unterminated field (no second part) ends the search, whatever its tag.
        let mut parts = tail.splitn(2, |&b| b == 0);
        let (value, after) = (parts.next()?, parts.next()?);
        if tag == code {
            return Some(value);
        }
        rest = after;
    }
    None
}

/// The five-character SQLSTATE of a backend error body.
pub fn sqlstate(body: &[u8]) -> Option<&[u8]> {
    field(body, b'C').filter(|c| c.len() == 5)
}

/// True when a backend error is FATAL or PANIC (the backend closes the connection after it).
pub fn is_fatal(body: &[u8]) -> bool {
    matches!(field(body, b'V').or_else(|| field(body, b'S')), Some(b"FATAL") | Some(b"PANIC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reads_back_fields() {
        let buf = encode(Severity::Fatal, "08P01", "bad things", Some("why"));
        assert_eq!(buf[0], b'E');
        let body = &buf[5..];
        assert_eq!(sqlstate(body), Some(&b"08P01"[..]));
        assert_eq!(field(body, b'M'), Some(&b"bad things"[..]));
        assert_eq!(field(body, b'D'), Some(&b"why"[..]));
        assert!(is_fatal(body));
        let notice = encode(Severity::Notice, "00000", "hello", None);
        assert_eq!(notice[0], b'N');
        assert!(!is_fatal(&notice[5..]));
    }

    #[test]
    fn truncated_body_reads_nothing() {
        assert_eq!(field(b"Cabc", b'C'), None);
        assert_eq!(field(b"", b'C'), None);
    }
}
