//! Server connection pools (`pool.mode = session | transaction`): one pool per role and
//! database, server connections checked out by client sessions and given back, FIFO waiting,
//! caps per database and overall, PAUSE/RESUME, RECONNECT, and the housekeeping of idle
//! connections. The session decides when a connection is taken and given back
//! (`session::pooled`); the pool knows nothing of the protocol beyond logging in.

pub mod carry;
mod check;
mod conn;
mod hidden;
mod info;
mod key;
mod maintenance;
mod nodes;
mod open;
mod pools;
pub mod prepared;
mod target;

pub use conn::{Conn, ServerConn};
pub use hidden::{run as run_hidden, HiddenError};
pub use info::{ServerInfo, ServerState};
pub use key::PoolKey;
pub use maintenance::run as maintain;
pub use nodes::{served_by_target, NodeSide, NODE_RETRY};
pub use open::{startup_packet, OpenError};
pub use pools::{CheckoutError, Pool, PoolSnapshot, Pools};
pub use target::Target;

/// What a pool logs its server connections in with (the latest its clients proved).
pub type Credential = crate::auth::ServerCredential;

/// What clients left on a server connection that the next client must know of.
pub struct ServerSideState {
    /// The statements prepared on it under proxy-chosen names (transaction mode).
    pub statements: prepared::ServerStatements,
    /// The settings clients' SETs left on it.
    pub settings: carry::ServerSettings,
}

impl ServerSideState {
    pub fn new(max_prepared_statements: usize) -> ServerSideState {
        ServerSideState { statements: prepared::ServerStatements::new(max_prepared_statements), settings: carry::ServerSettings::new() }
    }
}

/// An ErrorResponse body as `message (SQLSTATE)`.
pub fn describe_error(body: &[u8]) -> String {
    let field = |c| crate::wire::error_response::field(body, c).map(String::from_utf8_lossy).unwrap_or_default();
    format!("{} ({})", field(b'M'), field(b'C'))
}
