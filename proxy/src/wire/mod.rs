//! The PostgreSQL wire protocol, as far as the proxy needs it: framing on the 5-byte header, and
//! borrowed views of the few messages it must understand. Everything else is forwarded as bytes.
//! Views never allocate and never panic: a malformed body is a `WireError`.

pub mod auth;
pub mod backend;
pub mod backend_key;
pub mod bind;
pub mod cancel_request;
pub mod cstr;
pub mod describe;
pub mod error_response;
pub mod execute;
pub mod frame;
pub mod frontend;
pub mod parameter_status;
pub mod parse;
pub mod query;
pub mod ready;
pub mod startup;

/// A message body that does not match its declared layout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("{0} message is truncated")]
    Truncated(&'static str),
    #[error("{0} message has a missing string terminator")]
    Unterminated(&'static str),
    #[error("{0} message has {1} trailing bytes")]
    Trailing(&'static str, usize),
    #[error("{0} message has an invalid count {1}")]
    BadCount(&'static str, i64),
}
