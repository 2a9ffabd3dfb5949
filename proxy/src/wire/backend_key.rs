//! `K` BackendKeyData: the key a client needs to cancel its backend's query. Protocol 3.0 keys
//! are 4 bytes; 3.2 allows up to 256.

use super::cstr::Reader;
use super::WireError;

/// A backend's cancel key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelKey {
    pub pid: i32,
    pub secret: Vec<u8>,
}

impl CancelKey {
    pub fn decode(body: &[u8]) -> Result<CancelKey, WireError> {
        let mut r = Reader::new(body, "BackendKeyData");
        let pid = r.i32()?;
        let secret = r.remaining();
        if secret.len() < 4 || secret.len() > 256 {
            return Err(WireError::BadCount("BackendKeyData", secret.len() as i64));
        }
        Ok(CancelKey { pid, secret: secret.to_vec() })
    }

    /// The BackendKeyData frame carrying this key.
    pub fn frame(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.secret.len());
        body.extend_from_slice(&self.pid.to_be_bytes());
        body.extend_from_slice(&self.secret);
        super::frame::build(b'K', &body)
    }

    /// The CancelRequest packet that presents this key.
    pub fn cancel_request(&self) -> Vec<u8> {
        let len = 12 + self.secret.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as i32).to_be_bytes());
        out.extend_from_slice(&super::startup::CANCEL_REQUEST_CODE.to_be_bytes());
        out.extend_from_slice(&self.pid.to_be_bytes());
        out.extend_from_slice(&self.secret);
        out
    }
}
