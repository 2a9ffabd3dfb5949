//! Passwords in URLs are never shown: check-config, SHOW CONFIG, flush-cache and log lines print
//! URLs through `mask_url`.

/// `postgres://user:secret@host` → `postgres://user:***@host`, for every URL in `text` (a
/// comma-separated list, or an error message quoting one). Works on the text, so a URL too
/// broken to parse — the case an error message shows — is masked too.
pub fn mask_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | ',' | '"' | '\'' | '`' | ')')).unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.find(':'), authority.rfind('@')) {
            (Some(colon), Some(at)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn masks_every_form() {
        assert_eq!(mask_url("postgres://app:pw@db:5432/app"), "postgres://app:***@db:5432/app");
        assert_eq!(mask_url("redis://:s3cret@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(mask_url("redis://:a@n1:1,redis://:b@n2:2"), "redis://:***@n1:1,redis://:***@n2:2");
        assert_eq!(mask_url("redis://:a@host:notaport"), "redis://:***@host:notaport");
        assert_eq!(mask_url("postgres://p%40:x@y@h/db"), "postgres://p%40:***@h/db");
        assert_eq!(mask_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(mask_url("postgres://db:5432"), "postgres://db:5432");
        assert_eq!(mask_url("plain"), "plain");
        assert_eq!(
            mask_url("not a URL (invalid port): \"postgres://u:pw@h:x/db\" and redis://:r@c:1"),
            "not a URL (invalid port): \"postgres://u:***@h:x/db\" and redis://:***@c:1"
        );
    }
}
