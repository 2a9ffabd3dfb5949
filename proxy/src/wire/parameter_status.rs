//! `S` ParameterStatus (backend): a setting's name and its current value.

use super::cstr::Reader;

/// (name, value), or None when the body is malformed or not UTF-8 (the frame is relayed anyway).
pub fn decode(body: &[u8]) -> Option<(&str, &str)> {
    let mut r = Reader::new(body, "ParameterStatus");
    let name = std::str::from_utf8(r.cstr().ok()?).ok()?;
    let value = std::str::from_utf8(r.cstr().ok()?).ok()?;
    r.finish().ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes() {
        assert_eq!(super::decode(b"TimeZone\0UTC\0"), Some(("TimeZone", "UTC")));
        assert_eq!(super::decode(b"TimeZone\0UTC"), None);
        assert_eq!(super::decode(b"a\0b\0c"), None);
    }
}
