//! The cache hint comment `/* citus-proxy: cache ttl=30s */` (also `cache off`).

use crate::analysis::CacheHint;
use std::time::Duration;

fn duration(v: &str) -> Option<Duration> {
    let (num, unit) = v.find(|c: char| !c.is_ascii_digit()).map_or((v, ""), |i| (v.get(..i).unwrap_or(""), v.get(i..).unwrap_or("")));
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// Parse the body of a comment; None unless it is a citus-proxy cache directive.
pub(crate) fn parse_hint(comment: &str) -> Option<CacheHint> {
    let rest = comment.trim().strip_prefix("citus-proxy:")?.trim();
    let mut words = rest.split_whitespace();
    if words.next()? != "cache" {
        return None;
    }
    let mut hint = CacheHint { ttl: None, disabled: false };
    for w in words {
        if let Some(v) = w.strip_prefix("ttl=") {
            hint.ttl = Some(duration(v)?);
        } else if matches!(w, "off" | "no" | "false" | "disable") {
            hint.disabled = true;
        }
    }
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hints() {
        assert_eq!(parse_hint(" citus-proxy: cache ttl=30s ").and_then(|h| h.ttl), Some(Duration::from_secs(30)));
        assert_eq!(parse_hint("citus-proxy: cache ttl=250ms").and_then(|h| h.ttl), Some(Duration::from_millis(250)));
        assert!(parse_hint("citus-proxy: cache off").is_some_and(|h| h.disabled));
        assert_eq!(parse_hint("just a comment"), None);
        assert_eq!(parse_hint("citus-proxy: cache ttl=abc"), None);
    }
}
