//! Session settings carried across server connections in transaction pooling.
//!
//! A client's startup parameters and the SETs it ran outside a rolled-back transaction must hold
//! for every later transaction, whichever server connection runs it. So each client keeps the
//! statements that reproduce its settings ([`ClientSettings`]), each server connection keeps
//! what it has been made to hold ([`ServerSettings`]), and before a client's transaction the
//! session sends [`sync_sql`]: only the differences, usually nothing.
//!
//! How a session uses it:
//! 1. At login: `ClientSettings::new(&startup_parameters)`.
//! 2. When it gets a server connection for a transaction: `sync_sql(&client, &server, &mut sql)`;
//!    if true, run `sql` as one simple Query of its own (answers hidden) before the client's
//!    first message; if it succeeds, `server.applied(&client)`. (If it fails the implicit
//!    transaction undid all of it, so the server record stays as it was.)
//! 3. For each statement the client runs on it: `client.on_statement(sql)` (one statement's text).
//! 4. At the ReadyForQuery `I` that ends the transaction (explicit, or implicit around a Query or
//!    up to a Sync): `client.on_transaction_end(committed)` then `server.follow(&mut client)`,
//!    which records on the server what the client's statements did to it. Then release it.
//! 5. A server connection reset with `DISCARD ALL` (pool reset query): `server.reset()`.

mod client;
mod quote;
mod server;
mod statement;

pub use client::ClientSettings;
pub use server::{sync_sql, ServerSettings};
pub use statement::{read_statement, Change, Command};

/// Settings `RESET ALL` leaves alone (PostgreSQL's GUC_NO_RESET_ALL that a session can SET).
const NOT_RESET_BY_RESET_ALL: &[&str] = &["role", "session_authorization"];

#[cfg(test)]
mod tests;
