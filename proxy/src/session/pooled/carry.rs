//! Session settings across server connections: what the client SETs (and its startup
//! parameters) is remembered per client (`pool::carry`) and re-applied, the differences only, on
//! whichever server connection it gets next (see `Pooled::attach`). A SET counts once its
//! transaction commits: this file tells the record when that happens.

use super::relay::{Link, Pooled};
use crate::wire::ready::TxStatus;

impl Pooled<'_> {
    /// A statement text the client runs (a Query's, possibly several statements; a Parse's).
    pub(super) fn on_session_sql(&mut self, sql: &[u8]) {
        let Ok(sql) = std::str::from_utf8(sql) else { return };
        // Only the statements that can change settings are worth splitting out.
        if !might_change_settings(sql) {
            return;
        }
        for statement in split_statements(sql) {
            self.settings.on_statement(statement);
        }
    }

    /// The server refused a statement.
    pub(super) fn on_server_error(&mut self) {
        self.error_since_ready = true;
    }

    /// A statement completed with this command tag.
    pub(super) fn on_command_complete(&mut self, tag: &[u8]) {
        match tag {
            b"COMMIT" => self.block_end = Some(true),
            b"ROLLBACK" => self.block_end = Some(false),
            _ => {}
        }
        self.completed_for_renames(tag);
    }

    /// A ReadyForQuery with `status` arrived (`self.tx` still holds the one before it).
    pub(super) fn on_transaction_status(&mut self, status: TxStatus) {
        self.ready_for_renames();
        if status == TxStatus::Idle {
            let committed = match self.tx {
                // A transaction block ended: by COMMIT (of a block that had not failed).
                TxStatus::InTransaction | TxStatus::Failed => self.block_end == Some(true),
                // An implicit transaction: it committed when nothing in it failed.
                TxStatus::Idle => !self.error_since_ready && self.block_end != Some(false),
            };
            self.settings.on_transaction_end(committed);
            if let Link::Attached(conn) = &mut self.link {
                conn.state.settings.follow(&mut self.settings);
            }
            self.block_end = None;
        }
        self.error_since_ready = false;
    }
}

/// Cheap test before splitting: the statements that change carried settings start with one of
/// these words (a string of several statements is always split).
fn might_change_settings(sql: &str) -> bool {
    if super::pin::several(sql.as_bytes()) {
        return true;
    }
    let first = super::pin::first_word(sql.as_bytes());
    ["set", "reset", "discard", "savepoint", "rollback", "release", "abort"].iter().any(|w| first.eq_ignore_ascii_case(w.as_bytes()))
}

/// The statements of a simple-query string, split at semicolons outside quotes and comments.
pub(super) fn split_statements(sql: &str) -> impl Iterator<Item = &str> {
    let b = sql.as_bytes();
    let mut cuts = Vec::new();
    let (mut i, mut start) = (0, 0);
    while let Some(&c) = b.get(i) {
        match c {
            b'\'' | b'"' => {
                i += 1;
                while b.get(i).is_some_and(|&x| x != c) {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while b.get(i).is_some_and(|&x| x != b'\n') {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while b.get(i).is_some() && !(b.get(i) == Some(&b'*') && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                cuts.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    cuts.push((start, b.len()));
    cuts.into_iter().filter_map(move |(a, z)| sql.get(a..z)).filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let v: Vec<&str> = split_statements("SET a = 'x;y'; SET b TO 2 -- c;d\n; /* e;f */ SET c = \"g;h\"").collect();
        assert_eq!(v, vec!["SET a = 'x;y'", " SET b TO 2 -- c;d\n", " /* e;f */ SET c = \"g;h\""]);
    }
}
