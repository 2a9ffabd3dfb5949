//! What a client message can do wrong here: only be malformed. Unknown names are the server's
//! to report (see the module docs).

use crate::wire::WireError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreparedError {
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl PreparedError {
    /// The SQLSTATE of the ErrorResponse the session sends: protocol_violation.
    pub fn sqlstate(&self) -> &'static str {
        "08P01"
    }
}
