//! Session settings the router depends on, tracked from the statements that change them.

/// `"$user", public` → ["$user", "public"] (quotes removed, case kept for quoted names).
pub fn parse_search_path(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.len() >= 2 && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\''))) {
                s[1..s.len() - 1].to_string()
            } else {
                s.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `on` / `off` and PostgreSQL's other spellings of a boolean setting.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().trim_matches('\'').to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_paths_and_booleans() {
        assert_eq!(parse_search_path("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(parse_search_path("App, 'x'"), vec!["app", "x"]);
        assert_eq!(parse_bool("'on'"), Some(true));
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
