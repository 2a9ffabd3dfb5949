//! Hint comments: `/* citus-proxy: cache ttl=30s */` in the raw statement text. The parser drops
//! comments, so this scans the text itself, skipping string literals, quoted identifiers and
//! dollar-quoted bodies so that a hint-looking string value is never taken for a hint.

use std::time::Duration;

/// The TTL asked for by the first well-formed hint comment in `sql`, if any.
///
/// Well-formed: a block (or `--` line) comment whose text is `citus-proxy: cache ttl=<duration>`
/// (whitespace-separated, case-insensitive words, humantime duration > 0 such as `30s`, `500ms`,
/// `2m`). Anything else, including unknown extra words, is ignored rather than guessed at.
pub fn hint_ttl(sql: &str) -> Option<Duration> {
    comments(sql).into_iter().find_map(parse_hint)
}

fn parse_hint(comment: &str) -> Option<Duration> {
    let text = comment.trim();
    let prefix = "citus-proxy:";
    // `get`, not indexing: the comment may hold multi-byte characters at any offset.
    if !text.get(..prefix.len())?.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let mut words = text.get(prefix.len()..)?.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("cache") {
        return None;
    }
    let (name, value) = words.next()?.split_once('=')?;
    if !name.eq_ignore_ascii_case("ttl") || words.next().is_some() {
        return None;
    }
    let ttl = humantime::parse_duration(value).ok()?;
    (!ttl.is_zero()).then_some(ttl)
}

/// The bodies of the comments in `sql`, in order. An unterminated literal or comment ends the scan.
fn comments(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
                out.push(&sql[i + 2..end]);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // PostgreSQL block comments nest.
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                if depth > 0 {
                    return out;
                }
                out.push(&sql[i + 2..j - 2]);
                i = j;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && !(i > 1 && is_ident(b[i - 2]));
                match skip_quoted(b, i, b'\'', escapes) {
                    Some(next) => i = next,
                    None => return out,
                }
            }
            b'"' => match skip_quoted(b, i, b'"', false) {
                Some(next) => i = next,
                None => return out,
            },
            b'$' if i == 0 || !is_ident(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    match find(&b[body..], tag) {
                        Some(p) => i = body + p + tag.len(),
                        None => return out,
                    }
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Index just past the literal opened at `start`; doubled quotes (and backslashes in E'') escape.
fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut j = start + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return Some(j + 1);
            }
        } else {
            j += 1;
        }
    }
    None
}

/// `$$` or `$tag$` at `start` (a tag cannot start with a digit, so `$1` is a parameter).
fn dollar_tag(b: &[u8], start: usize) -> Option<&[u8]> {
    let mut j = start + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < b.len() && b[j] != b'$' {
        if !(b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
            return None;
        }
        j += 1;
    }
    (j < b.len()).then(|| &b[start..=j])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hints() {
        assert_eq!(hint_ttl("/* citus-proxy: cache ttl=30s */ SELECT 1"), Some(Duration::from_secs(30)));
        assert_eq!(hint_ttl("SELECT 1 /*citus-proxy: cache ttl=500ms*/"), Some(Duration::from_millis(500)));
        assert_eq!(hint_ttl("SELECT /* x */ 1 -- citus-proxy: cache ttl=2m"), Some(Duration::from_secs(120)));
        assert_eq!(hint_ttl("/* CITUS-PROXY: Cache TTL=1s */ SELECT 1"), Some(Duration::from_secs(1)));
        assert_eq!(hint_ttl("/* /* nested */ citus-proxy: cache ttl=3s */ SELECT 1"), None);
        assert_eq!(hint_ttl("/* a */ /* citus-proxy: cache ttl=3s */ SELECT 1"), Some(Duration::from_secs(3)));
    }

    #[test]
    fn ignores_malformed_hints() {
        for sql in [
            "SELECT 1",
            "/* citus-proxy: cache */ SELECT 1",
            "/* citus-proxy: cache ttl= */ SELECT 1",
            "/* citus-proxy: cache ttl=abc */ SELECT 1",
            "/* citus-proxy: cache ttl=0s */ SELECT 1",
            "/* citus-proxy: cache ttl=30 */ SELECT 1",
            "/* citus-proxy: cache ttl=30s please */ SELECT 1",
            "/* citus-proxy: nocache ttl=30s */ SELECT 1",
            "/* citus-proxy cache ttl=30s */ SELECT 1",
            "/* citus-proxy: cache ttl=30s SELECT 1",
            "/* ééééééééé */ SELECT 'ü' -- ü",
            "/* citus-proxy: cache ttl=1秒 */ SELECT 1",
        ] {
            assert_eq!(hint_ttl(sql), None, "{sql}");
        }
    }

    #[test]
    fn literals_are_not_hints() {
        assert_eq!(hint_ttl("SELECT '/* citus-proxy: cache ttl=30s */'"), None);
        assert_eq!(hint_ttl("SELECT 'it''s /* citus-proxy: cache ttl=30s */'"), None);
        assert_eq!(hint_ttl("SELECT E'\\' /* citus-proxy: cache ttl=30s */'"), None);
        assert_eq!(hint_ttl("SELECT \"/* citus-proxy: cache ttl=30s */\" FROM t"), None);
        assert_eq!(hint_ttl("SELECT $$ /* citus-proxy: cache ttl=30s */ $$"), None);
        assert_eq!(hint_ttl("SELECT $q$ /* citus-proxy: cache ttl=30s */ $q$"), None);
        assert_eq!(
            hint_ttl("SELECT $1, 'x' /* citus-proxy: cache ttl=4s */"),
            Some(Duration::from_secs(4))
        );
    }
}
