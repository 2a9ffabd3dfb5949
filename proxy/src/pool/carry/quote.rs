//! SQL spellings of names and values in the statements the proxy writes.

/// Settings whose value is a list of identifiers (GUC_LIST_QUOTE): `SET name = 'a, b'` would make
/// one element of the whole string, and `SET name TO a, B` shows `a, b`, so their raw value is
/// given to `set_config`, which stores it as a startup parameter does.
const IDENTIFIER_LISTS: &[&str] =
    &["search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries", "shared_preload_libraries"];

/// A string literal. With a backslash, an `E''` string, which reads the same whatever
/// `standard_conforming_strings` is.
pub fn literal(value: &str, out: &mut String) {
    if value.contains('\\') {
        out.push_str("E'");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("''"),
                c => out.push(c),
            }
        }
    } else {
        out.push('\'');
        for c in value.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
    }
    out.push('\'');
}

/// A setting name: as is when it reads the same unquoted (lower case, `_`, digits, dotted
/// parts for custom settings), else double-quoted.
pub fn name(name: &str, out: &mut String) {
    let plain = !name.is_empty()
        && name.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if plain {
        out.push_str(name);
    } else {
        identifier(name, out);
    }
}

/// A double-quoted identifier.
pub fn identifier(id: &str, out: &mut String) {
    out.push('"');
    for c in id.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// The statement that gives a setting the value a startup parameter gave it.
pub fn startup_set(setting: &str, value: &str) -> String {
    let mut out = String::with_capacity(setting.len() + value.len() + 12);
    out.push_str("SET ");
    name(setting, &mut out);
    if IDENTIFIER_LISTS.contains(&setting) {
        out.clear();
        out.push_str("SELECT pg_catalog.set_config(");
        literal(setting, &mut out);
        out.push_str(", ");
        literal(value, &mut out);
        out.push_str(", false)");
    } else {
        out.push_str(" = ");
        literal(value, &mut out);
    }
    out
}

/// The statement that puts a setting back to the server's default.
pub fn reset(setting: &str, out: &mut String) {
    if setting == super::statement::SESSION_CHARACTERISTICS {
        out.push_str("RESET default_transaction_isolation;\nRESET default_transaction_read_only;\nRESET default_transaction_deferrable");
        return;
    }
    out.push_str("RESET ");
    name(setting, out);
}
