//! Passwords in URLs are never shown: check-config, SHOW CONFIG, flush-cache and log lines print
//! URLs through `mask_url`.

/// `postgres://user:secret@host` → `postgres://user:***@host`, for each comma-separated URL.
/// Works on the text, so a URL too broken to parse (the case an error message shows) is masked too.
pub fn mask_url(text: &str) -> String {
    text.split(',').map(mask_one).collect::<Vec<_>>().join(",")
}

fn mask_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else { return url.to_string() };
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    out.push_str(&userinfo[..colon]);
    out.push_str(":***");
    out.push_str(&rest[at..]);
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
    }
}
