//! What ties a transaction-mode client to its server connection for good: session state that
//! cannot be carried to another connection (LISTEN, SQL-level PREPARE, cursors WITH HOLD,
//! temporary tables, session advisory locks). Such a client keeps its connection until it
//! leaves, as in session mode, so it never sees another connection's state or loses its own.
//! Looks at the first words and two spellings of one function name; allocates nothing.

/// Whether running `sql` leaves session state behind that only this connection has.
pub fn pins(sql: &[u8]) -> bool {
    let mut words = sql.split(|b| b.is_ascii_whitespace() || *b == b'(' || *b == b';').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    let is = |w: &[u8], k: &str| w.eq_ignore_ascii_case(k.as_bytes());
    if is(first, "listen") || is(first, "prepare") || is(first, "load") {
        return true;
    }
    if is(first, "declare") {
        // Only a cursor WITH HOLD outlives its transaction.
        return contains_word(sql, b"hold");
    }
    if is(first, "create") {
        let mut next = words.next().unwrap_or_default();
        if is(next, "global") || is(next, "local") {
            next = words.next().unwrap_or_default();
        }
        if is(next, "temp") || is(next, "temporary") {
            return true;
        }
        if is(next, "unlogged") || is(next, "table") || is(next, "view") || is(next, "sequence") {
            return false;
        }
    }
    if (is(first, "select") || is(first, "with"))
        && contains_word(sql, b"into")
        && (contains_word(sql, b"temp") || contains_word(sql, b"temporary"))
    {
        return true;
    }
    // pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock…; the _xact_ forms end
    // with the transaction and do not match.
    find_ci(sql, b"advisory_lock")
}

fn find_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn contains_word(sql: &[u8], word: &[u8]) -> bool {
    sql.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_')).any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::pins;

    #[test]
    fn session_state_pins() {
        for sql in [
            "LISTEN jobs",
            "listen \"Jobs\"",
            "PREPARE q AS SELECT 1",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "CREATE TEMP TABLE t (a int)",
            "create temporary table t (a int)",
            "CREATE GLOBAL TEMPORARY TABLE t (a int)",
            "SELECT * INTO TEMP t FROM x",
            "SELECT pg_advisory_lock(1)",
            "select PG_TRY_ADVISORY_LOCK(1, 2)",
            "SELECT pg_advisory_lock_shared(7)",
        ] {
            assert!(pins(sql.as_bytes()), "{sql}");
        }
    }

    #[test]
    fn transaction_scoped_does_not() {
        for sql in [
            "SELECT 1",
            "DECLARE c CURSOR FOR SELECT 1",
            "CREATE TABLE temp_things (a int)",
            "SELECT pg_advisory_xact_lock(1)",
            "INSERT INTO t VALUES ('listen')",
            "SET search_path TO a",
            "",
        ] {
            assert!(!pins(sql.as_bytes()), "{sql}");
        }
    }
}
