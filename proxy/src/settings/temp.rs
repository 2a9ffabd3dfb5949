//! The names of the temporary relations a session created. PostgreSQL searches the session's
//! `pg_temp` schema before the search path, so once a session made a temporary `users`, its
//! unqualified `users` is that table, not the distributed one the metadata knows: such statements
//! are routed as local and never cached (another session's cached rows of the permanent table
//! are not what this session reads, and its own rows must never be served to anyone else).
//!
//! Names are kept until DISCARD TEMP / DISCARD ALL (a DROP, ON COMMIT DROP or a rolled-back
//! CREATE only costs cache hits for the rest of the session).

use citus_proxy_router::TableName;

use super::words::identifier;

#[derive(Debug, Default)]
pub struct TempRelations {
    names: Vec<String>,
}

impl TempRelations {
    /// Whether `t` may resolve to one of this session's temporary relations.
    pub fn shadows(&self, t: &TableName) -> bool {
        match &t.schema {
            None => self.names.contains(&t.name),
            Some(s) => s.starts_with("pg_temp"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn clear(&mut self) {
        self.names.clear();
    }

    /// Notes every temporary relation `sql` creates: `CREATE [GLOBAL|LOCAL] TEMP[ORARY] TABLE |
    /// VIEW | SEQUENCE name`, `CREATE TABLE pg_temp.name` and `SELECT … INTO TEMP name`.
    pub fn note_created(&mut self, sql: &str) {
        let words: Vec<&str> =
            sql.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ';' | ',')).filter(|w| !w.is_empty()).collect();
        let is = |i: usize, k: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
        let mut i = 0;
        while i < words.len() {
            let start = i;
            i += 1;
            let mut temp = false;
            let mut j = start + 1;
            if is(start, "create") {
                if is(j, "or") && is(j + 1, "replace") {
                    j += 2;
                }
                if is(j, "global") || is(j, "local") {
                    j += 1;
                }
                if is(j, "temp") || is(j, "temporary") {
                    temp = true;
                    j += 1;
                }
                if is(j, "unlogged") {
                    j += 1;
                }
                if !(is(j, "table") || is(j, "view") || is(j, "sequence")) {
                    continue;
                }
                j += 1;
                if is(j, "if") && is(j + 1, "not") && is(j + 2, "exists") {
                    j += 3;
                }
            } else if is(start, "into") && (is(j, "temp") || is(j, "temporary")) {
                temp = true;
                j += 1;
                if is(j, "table") {
                    j += 1;
                }
            } else {
                continue;
            }
            let Some(name) = words.get(j) else { continue };
            let (schema, bare) = match name.rsplit_once('.') {
                Some((s, n)) => (Some(identifier(s)), n),
                None => (None, *name),
            };
            if temp || schema.as_deref().is_some_and(|s| s.starts_with("pg_temp")) {
                let bare = identifier(bare);
                if !self.names.contains(&bare) {
                    self.names.push(bare);
                }
            }
            i = j + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> TableName {
        TableName { schema: None, name: n.into() }
    }

    #[test]
    fn created_names() {
        let mut t = TempRelations::default();
        t.note_created("CREATE TEMP TABLE users (x int); INSERT INTO users VALUES (1)");
        t.note_created("create local temporary table if not exists \"Orders\"(id int)");
        t.note_created("CREATE TABLE pg_temp.events AS SELECT 1");
        t.note_created("SELECT * INTO TEMP TABLE config FROM x");
        t.note_created("CREATE TABLE plain (x int); CREATE VIEW v AS SELECT 1");
        assert!(t.shadows(&name("users")) && t.shadows(&name("Orders")) && t.shadows(&name("events")) && t.shadows(&name("config")));
        assert!(!t.shadows(&name("plain")) && !t.shadows(&name("v")) && !t.shadows(&name("orders")));
        assert!(t.shadows(&TableName { schema: Some("pg_temp".into()), name: "anything".into() }));
        assert!(!t.shadows(&TableName { schema: Some("public".into()), name: "users".into() }));
        t.clear();
        assert!(!t.shadows(&name("users")));
    }
}
