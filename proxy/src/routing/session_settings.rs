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

/// What a RESET / DISCARD statement puts back.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetTarget<'a> {
    All,
    One(&'a str),
}

/// `RESET name` / `RESET ALL` / `DISCARD ALL` as one statement; None for anything else. Runs on
/// every Query: looks at three words at most and allocates nothing.
pub fn reset_target(sql: &str) -> Option<ResetTarget<'_>> {
    let mut words = sql.trim().trim_end_matches(';').split_whitespace();
    let (Some(verb), Some(what), None) = (words.next(), words.next(), words.next()) else { return None };
    let reset = verb.eq_ignore_ascii_case("reset");
    if !reset && !verb.eq_ignore_ascii_case("discard") {
        return None;
    }
    if what.eq_ignore_ascii_case("all") {
        Some(ResetTarget::All)
    } else if reset && what.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        Some(ResetTarget::One(what))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets() {
        assert_eq!(reset_target("RESET ALL;"), Some(ResetTarget::All));
        assert_eq!(reset_target("discard all"), Some(ResetTarget::All));
        assert_eq!(reset_target("reset search_path"), Some(ResetTarget::One("search_path")));
        assert_eq!(reset_target("discard plans"), None);
        assert_eq!(reset_target("reset \"Weird\""), None);
        assert_eq!(reset_target("reset all now"), None);
    }

    #[test]
    fn search_paths_and_booleans() {
        assert_eq!(parse_search_path("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(parse_search_path("App, 'x'"), vec!["app", "x"]);
        assert_eq!(parse_bool("'on'"), Some(true));
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
