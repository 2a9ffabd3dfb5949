//! Protocol-level named prepared statements in transaction pooling.
//!
//! A client's `Parse "S"` defines S for the client's whole session, but in transaction mode each
//! transaction may run on another server connection. So a statement is prepared on the server
//! under a name the proxy chooses from its content (`citus_proxy_<id>`, one id per distinct query
//! text and parameter types, shared by all clients), each server connection remembers which ids
//! it holds (a bounded LRU), and the client's Parse/Bind/Describe/Close are rewritten to those
//! names, with the Parse injected wherever the serving connection lacks it.
//!
//! Every ParseComplete/CloseComplete the server sends must then be passed, hidden, or turned
//! into the answer the client expects; [`ResponseFixups`] is the queue that says which, in order.
//!
//! How a session uses it, per client message while it holds a server connection:
//! - `P` → [`Planner::on_parse`], `B` → [`Planner::on_bind`], `D` → [`Planner::on_describe`],
//!   `C` → [`Planner::on_close`]: each writes exactly the frames to send to the server.
//! - `S` (Sync), `Q` (Query), `F` (FunctionCall): forward as is and call
//!   [`ResponseFixups::expect_ready`] (each is answered by one ReadyForQuery). Also call
//!   [`Planner::on_query`] for `Q` (a simple query drops the unnamed statement).
//! - Everything else (`E`, `H`, …): forward as is.
//! - The session's own simple queries on the connection (settings sync, health check): call
//!   `expect_ready` too, and [`ServerStatements::clear_unnamed`].
//!
//! Per server message: `1`/`3` → [`ResponseFixups::on_complete`] says pass, hide or rewrite;
//! `Z` → [`ResponseFixups::on_ready`] (before the session releases the connection); `C`
//! (CommandComplete) → [`ServerStatements::on_command_complete`], which notices `DISCARD ALL` /
//! `DEALLOCATE ALL` that emptied the server's statements.
//!
//! An unknown client statement name is sent to the server unchanged, so PostgreSQL itself answers
//! `26000 prepared statement "S" does not exist` at exactly the place it would have, and skips to
//! Sync as it would have: the session has nothing to position. (A client without an unnamed
//! statement that binds it gets a hidden Close of the server's first, so it cannot reach another
//! client's leftover one; a client name starting `citus_proxy_` that it never defined is sent as
//! `citus_proxy_noop`.)
//!
//! Where it differs from one PostgreSQL session:
//! - Parse of a name that exists replaces it (PostgreSQL: 42P05 until Close).
//! - A named Parse that fails on the server still defines the name for the client: a later Bind
//!   prepares it again and gets the same error, not 26000.
//! - Parse of a statement the server already holds is answered by a noop Close, which also
//!   succeeds inside a failed transaction block (PostgreSQL: 25P02 for the Parse; the next Bind
//!   fails with 25P02 either way).
//! - SQL `DEALLOCATE name` reaches a server that never heard of `name` and fails there; the
//!   session has to answer it itself (`ClientStatements::deallocate`). `DEALLOCATE ALL` and
//!   `DISCARD ALL` work: the server runs them, the session calls
//!   `ClientStatements::deallocate_all` and the CommandComplete clears the server's record.

mod client;
mod error;
mod fixups;
mod frames;
mod ids;
mod planner;
mod server;

pub use client::ClientStatements;
pub use error::PreparedError;
pub use fixups::{Answer, ResponseFixups};
pub use ids::{Prepared, StatementIds};
pub use planner::Planner;
pub use server::ServerStatements;

/// What every server-side name starts with. A client name with this prefix is never sent to the
/// server as it is (it could address another client's statement).
pub const SERVER_NAME_PREFIX: &[u8] = b"citus_proxy_";

/// A statement name the proxy never prepares: closing it is a no-op the server still answers
/// with CloseComplete, which keeps the response stream in step with the client's messages.
pub const NOOP_NAME: &[u8] = b"citus_proxy_noop";

#[cfg(test)]
mod tests;
