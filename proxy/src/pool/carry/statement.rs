//! What one statement text does to the settings a client carries: a lasting SET, a RESET, RESET
//! ALL, DISCARD ALL, or a savepoint step (which can undo SETs). Everything else is nothing.
//! Reads a few words; the SET forms themselves are put in one shape by `settings::set_change`.

use crate::settings::words::{identifier, skip_comments};
use crate::settings::{session_command, set_change, SessionCommand, SetChange};

/// The key `SET SESSION CHARACTERISTICS AS TRANSACTION …` is kept under (it sets three
/// `default_transaction_*` settings at once).
pub(super) const SESSION_CHARACTERISTICS: &str = "session characteristics";

/// A change to the settings, once its transaction commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `name` (lower case) now holds what `text` (the statement, without its `;`) sets.
    Set {
        name: String,
        text: String,
    },
    /// Back to the default (RESET name, SET name TO DEFAULT, SET ROLE NONE…).
    Reset(String),
    ResetAll,
    DiscardAll,
}

/// What a statement is, as far as carried settings go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Change(Change),
    Savepoint(String),
    RollbackTo(String),
    Release(String),
    /// No lasting effect on settings (SET LOCAL, SET TRANSACTION, any other statement).
    Nothing,
}

pub fn read_statement(sql: &str) -> Command {
    let text = skip_comments(sql).trim_end();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let (verb, rest) = word(text);
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    if is(verb, "set") {
        return read_set(text, rest);
    }
    if is(verb, "savepoint") {
        return Command::Savepoint(identifier(word(rest).0));
    }
    if is(verb, "release") {
        let (w, r) = word(rest);
        let name = if is(w, "savepoint") { word(r).0 } else { w };
        return Command::Release(identifier(name));
    }
    if is(verb, "rollback") || is(verb, "abort") {
        // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name; a plain ROLLBACK is the
        // transaction's end, which the session reports.
        let (mut w, mut r) = word(rest);
        if is(w, "work") || is(w, "transaction") {
            (w, r) = word(r);
        }
        if is(w, "to") {
            let (w2, r2) = word(r);
            let name = if is(w2, "savepoint") { word(r2).0 } else { w2 };
            return Command::RollbackTo(identifier(name));
        }
        return Command::Nothing;
    }
    match session_command(text) {
        Some(SessionCommand::Reset(name)) => Command::Change(Change::Reset(name.to_ascii_lowercase())),
        Some(SessionCommand::ResetAll) => Command::Change(Change::ResetAll),
        Some(SessionCommand::DiscardAll) => Command::Change(Change::DiscardAll),
        _ => Command::Nothing,
    }
}

/// `SET [SESSION | LOCAL] name {TO | =} value`, or one of the special forms (SET ROLE, SET TIME
/// ZONE, SET NAMES, SET SESSION AUTHORIZATION, SET TRANSACTION…). `text` is the whole statement.
fn read_set(text: &str, rest: &str) -> Command {
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let (mut first, mut after) = word(rest);
    if first.is_empty() {
        return Command::Nothing;
    }
    if is(first, "session") && is(word(after).0, "characteristics") {
        // A session default for later transactions: kept whole.
        return Command::Change(Change::Set { name: SESSION_CHARACTERISTICS.into(), text: text.into() });
    }
    let mut local = false;
    if is(first, "local") || (is(first, "session") && !is(word(after).0, "authorization")) {
        local = is(first, "local");
        (first, after) = word(after);
    }
    let after = after.trim_start();
    let value = if let Some(v) = after.strip_prefix('=') {
        Some(v.trim())
    } else {
        let (to, v) = word(after);
        is(to, "to").then_some(v.trim())
    };
    let change = match value {
        Some(value) => set_change(&identifier(first), value, local),
        // The special forms are read from their whole text.
        None => set_change(first, text, local),
    };
    match change {
        SetChange::Assign { local: true, .. } | SetChange::Nothing => Command::Nothing,
        SetChange::Assign { name, value: None, .. } => Command::Change(Change::Reset(name)),
        SetChange::Assign { name, value: Some(_), .. } => Command::Change(Change::Set { name, text: text.into() }),
    }
}

/// The first word (up to white space or `=`) and what follows it.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}
