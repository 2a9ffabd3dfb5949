//! The backend messages the proxy acts on, as types; every other kind is `Other(tag)` and its
//! bytes are relayed without being read.

use super::ready::TxStatus;
use super::WireError;

pub enum Backend<'a> {
    ReadyForQuery(TxStatus),
    /// The ErrorResponse body (fields).
    Error(&'a [u8]),
    /// ParameterStatus; None when malformed or not UTF-8 (relayed anyway).
    ParameterStatus(Option<(&'a str, &'a str)>),
    /// `C`: the command tag (`SELECT 1`, `SET`, `ROLLBACK`…).
    CommandComplete(&'a [u8]),
    ParseComplete,
    CloseComplete,
    CopyInResponse,
    Other(u8),
}

impl<'a> Backend<'a> {
    /// Whether the session must see the body of a message with this tag.
    pub fn inspected(tag: u8) -> bool {
        matches!(tag, b'Z' | b'E' | b'S' | b'C' | b'1' | b'3' | b'G')
    }

    pub fn decode(tag: u8, body: &'a [u8]) -> Result<Backend<'a>, WireError> {
        Ok(match tag {
            b'Z' => Backend::ReadyForQuery(TxStatus::from_body(body).ok_or(WireError::Truncated("ReadyForQuery"))?),
            b'E' => Backend::Error(body),
            b'S' => Backend::ParameterStatus(super::parameter_status::decode(body)),
            b'C' => Backend::CommandComplete(body.strip_suffix(&[0]).ok_or(WireError::Unterminated("CommandComplete"))?),
            b'1' => Backend::ParseComplete,
            b'3' => Backend::CloseComplete,
            b'G' => Backend::CopyInResponse,
            other => Backend::Other(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert!(matches!(Backend::decode(b'Z', b"T"), Ok(Backend::ReadyForQuery(TxStatus::InTransaction))));
        assert!(Backend::decode(b'Z', b"X").is_err());
        assert!(matches!(Backend::decode(b'C', b"SET\0"), Ok(Backend::CommandComplete(b"SET"))));
        assert!(matches!(Backend::decode(b'D', b"whatever"), Ok(Backend::Other(b'D'))));
    }
}
