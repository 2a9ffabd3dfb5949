//! `auth.file`: PgBouncer's userlist format. Each entry is a line `"user" "secret"` (further
//! fields are ignored, as PgBouncer does); a `"` inside a field is written `""`. Blank lines and
//! lines starting with `;` or `#` are comments.

use std::collections::HashMap;

use super::Secret;

/// Parses a userlist; errors name the (1-based) line.
pub fn parse(text: &str) -> Result<HashMap<String, Secret>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let fail = |what: &str| format!("line {}: {what} (expected `\"user\" \"secret\"`)", n + 1);
        let (user, rest) = quoted(line).ok_or_else(|| fail("the user name is not a closed double-quoted string"))?;
        let rest = rest.trim_start();
        let (secret, _ignored) = quoted(rest).ok_or_else(|| fail("the secret is not a closed double-quoted string"))?;
        if user.is_empty() {
            return Err(fail("empty user name"));
        }
        out.insert(user, Secret::parse(&secret));
    }
    Ok(out)
}

/// A `"..."` field at the start of `s` (with `""` standing for `"`), and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut rest = s.strip_prefix('"')?;
    let mut field = String::new();
    loop {
        let end = rest.find('"')?;
        field.push_str(rest.get(..end)?);
        rest = rest.get(end + 1..)?;
        match rest.strip_prefix('"') {
            Some(after) => {
                field.push('"');
                rest = after;
            }
            None => return Some((field, rest)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_entries_comments_and_escapes() {
        let text = "; comment\n# another\n\n\"alice\" \"md5ab8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e\"\n  \"bo\"\"b\"   \"pa ss\"\"word\" \"ignored\"\n\"carol\" \"\"\n";
        let m = parse(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["alice"], Secret::Md5("md5ab8f2c7d1e0a9b3c4d5e6f7a8b9c0d1e".into()));
        assert_eq!(m["bo\"b"], Secret::Plain("pa ss\"word".into()));
        assert_eq!(m["carol"], Secret::Plain(String::new()));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("\"a\" \"b\"\nalice secret\n").unwrap_err(),
            "line 2: the user name is not a closed double-quoted string (expected `\"user\" \"secret\"`)"
        );
        assert!(parse("\"a\" \"unterminated\n").unwrap_err().starts_with("line 1: the secret"));
        assert!(parse("\"a\"\n").unwrap_err().starts_with("line 1: the secret"));
        assert!(parse("\"\" \"x\"\n").unwrap_err().contains("empty user name"));
    }
}
