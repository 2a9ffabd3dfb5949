//! What ties a transaction-mode client to its server connection for good: session state that
//! cannot be carried to another connection (LISTEN, SQL-level PREPARE, cursors WITH HOLD,
//! temporary tables, session advisory locks). Such a client keeps its connection until it
//! leaves, as in session mode, so it never sees another connection's state or loses its own.
//! Looks at the first words and two spellings of one function name; allocates nothing.

/// Whether running `sql` leaves session state behind that only this connection has. Errs on
/// the side of pinning: a needless pin costs a connection, a missed one a wrong answer.
pub fn pins(sql: &[u8]) -> bool {
    // pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock…; the _xact_ forms end
    // with the transaction and do not match. pg_temp names a temporary schema object.
    if underscored(sql) {
        return true;
    }
    if !several(sql) {
        return statement_pins(sql);
    }
    let Ok(text) = std::str::from_utf8(sql) else { return false };
    super::carry::split_statements(text).any(|st| statement_pins(st.as_bytes()))
}

fn statement_pins(sql: &[u8]) -> bool {
    let mut words = words(sql);
    let first = words.next().unwrap_or_default();
    let is = |w: &[u8], k: &str| w.eq_ignore_ascii_case(k.as_bytes());
    if is(first, "listen") || is(first, "prepare") || is(first, "load") {
        return true;
    }
    if is(first, "declare") {
        // Only a cursor WITH HOLD outlives its transaction.
        return words.any(|w| is(w, "hold"));
    }
    if is(first, "create") {
        // CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP[ORARY] …
        return words.take(5).any(|w| is(w, "temp") || is(w, "temporary"));
    }
    if (is(first, "select") || is(first, "with")) && has_into(sql) {
        // SELECT … INTO TEMP[ORARY] [TABLE] t
        let mut after_into = false;
        for w in words {
            if after_into && (is(w, "temp") || is(w, "temporary")) {
                return true;
            }
            after_into = is(w, "into");
        }
    }
    false
}

/// Whether `into` appears (most SELECTs have few i's to look at).
fn has_into(sql: &[u8]) -> bool {
    memchr::memchr2_iter(b'i', b'I', sql).any(|i| sql.get(i..i + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"into")))
}

/// The words of a statement, comments skipped.
fn words(sql: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = sql;
    std::iter::from_fn(move || loop {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace() && !matches!(b, b'(' | b')' | b',' | b';'))?;
        rest = rest.get(start..)?;
        if rest.starts_with(b"--") {
            rest = rest.get(rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len())..)?;
            continue;
        }
        if rest.starts_with(b"/*") {
            let end = rest.windows(2).position(|w| w == b"*/").map_or(rest.len(), |p| p + 2);
            rest = rest.get(end..)?;
            continue;
        }
        let len = rest.iter().position(|b| b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b',' | b';')).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(len);
        rest = tail;
        return Some(word);
    })
}

/// `advisory_lock` or `pg_temp` anywhere: both have an underscore, which most statements have
/// few of, so only the places around underscores are compared.
fn underscored(sql: &[u8]) -> bool {
    memchr::memchr_iter(b'_', sql).any(|i| {
        let at = |from: usize, word: &[u8]| sql.get(from..from + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word));
        (i >= 8 && at(i - 8, b"advisory_lock")) || (i >= 2 && at(i - 2, b"pg_temp"))
    })
}

/// Whether a text may hold more than one statement: a semicolon before its end (drivers end
/// single statements with one).
pub(super) fn several(sql: &[u8]) -> bool {
    let trimmed = sql.trim_ascii_end();
    let trimmed = trimmed.strip_suffix(b";").unwrap_or(trimmed);
    memchr::memchr(b';', trimmed).is_some()
}

/// The first word of a statement text, comments skipped.
pub(super) fn first_word(sql: &[u8]) -> &[u8] {
    words(sql).next().unwrap_or_default()
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
            "/* c */ LISTEN x",
            "-- c\nLISTEN x",
            "SELECT 1; LISTEN x",
            "CREATE TABLE pg_temp.t (a int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "CREATE FUNCTION pg_temp.f() RETURNS int AS 'select 1' LANGUAGE sql",
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
            "INSERT INTO t VALUES ('temp')",
            "SELECT 'listen'; SELECT 2",
            "",
        ] {
            assert!(!pins(sql.as_bytes()), "{sql}");
        }
    }
}
