//! CancelRequest: sent on a fresh connection instead of a startup packet.

use super::backend_key::CancelKey;
use super::cstr::Reader;
use super::WireError;

/// Decodes the body after the 8-byte `length | code` prefix.
pub fn decode(rest: &[u8]) -> Result<CancelKey, WireError> {
    let mut r = Reader::new(rest, "CancelRequest");
    let pid = r.i32()?;
    let secret = r.remaining();
    if secret.len() < 4 || secret.len() > 256 {
        return Err(WireError::BadCount("CancelRequest", secret.len() as i64));
    }
    Ok(CancelKey { pid, secret: secret.to_vec() })
}
