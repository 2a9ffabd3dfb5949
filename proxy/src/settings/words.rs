//! The few statement texts the session state follows that the router leaves as plain utility
//! statements (RESET, DISCARD, DEALLOCATE), and the spellings of values settings take. Runs on
//! utility statements only; looks at four words at most and allocates nothing.

/// A session command read from a one-statement text.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCommand<'a> {
    /// `RESET name` (the name as written).
    Reset(&'a str),
    /// `RESET ALL`: every setting but role and session authorization back to its default.
    ResetAll,
    /// `DISCARD ALL`: RESET ALL, SET SESSION AUTHORIZATION DEFAULT, DEALLOCATE ALL, DISCARD TEMP…
    DiscardAll,
    /// `DISCARD TEMP` / `DISCARD TEMPORARY`: the session's temporary tables are dropped.
    DiscardTemp,
    /// `DEALLOCATE [PREPARE] ALL`.
    DeallocateAll,
    /// `DEALLOCATE [PREPARE] name` (the name as written: quoted or not).
    Deallocate(&'a str),
}

/// The session command `sql` is, if it is one; None for anything else.
pub fn session_command(sql: &str) -> Option<SessionCommand<'_>> {
    let mut words = sql.trim().trim_end_matches(';').split_whitespace();
    let verb = words.next()?;
    let mut what = words.next()?;
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let cmd = if is(verb, "reset") {
        if is(what, "all") {
            SessionCommand::ResetAll
        } else if what.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            SessionCommand::Reset(what)
        } else {
            return None;
        }
    } else if is(verb, "discard") {
        match what.to_ascii_lowercase().as_str() {
            "all" => SessionCommand::DiscardAll,
            "temp" | "temporary" => SessionCommand::DiscardTemp,
            _ => return None,
        }
    } else if is(verb, "deallocate") {
        if is(what, "prepare") {
            what = words.next()?;
        }
        if is(what, "all") {
            SessionCommand::DeallocateAll
        } else {
            SessionCommand::Deallocate(what)
        }
    } else {
        return None;
    };
    words.next().is_none().then_some(cmd)
}

/// An SQL identifier as PostgreSQL reads it: `"Quoted"` keeps its case, anything else is folded.
pub fn identifier(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => word.to_ascii_lowercase(),
    }
}

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

/// `SET name TO DEFAULT` / `SET name = DEFAULT` (an unquoted DEFAULT, not the string 'default').
pub fn is_default(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("default")
}

/// Settings given in the startup packet's `options` (`-c name=value`, `--name=value`), as
/// libpq's PGOPTIONS writes them; backslash escapes a space.
pub fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut args: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let pair = if a == "-c" { it.next().map(String::as_str) } else { a.strip_prefix("-c").or_else(|| a.strip_prefix("--")) };
        if let Some((k, v)) = pair.and_then(|p| p.split_once('=')) {
            out.push((k.replace('-', "_").to_ascii_lowercase(), v.to_string()));
        }
    }
    out
}

/// The text after leading white space and comments.
pub fn skip_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return s;
        }
    }
}

/// The first keyword of a statement text, after leading white space and comments.
pub fn first_word(sql: &str) -> &str {
    let s = skip_comments(sql);
    let end = s.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_commands() {
        use SessionCommand::*;
        assert_eq!(session_command("RESET ALL;"), Some(ResetAll));
        assert_eq!(session_command("reset search_path"), Some(Reset("search_path")));
        assert_eq!(session_command("discard all"), Some(DiscardAll));
        assert_eq!(session_command("DISCARD TEMPORARY"), Some(DiscardTemp));
        assert_eq!(session_command("discard plans"), None);
        assert_eq!(session_command("DEALLOCATE PREPARE s1"), Some(Deallocate("s1")));
        assert_eq!(session_command("deallocate \"S1\""), Some(Deallocate("\"S1\"")));
        assert_eq!(session_command("DEALLOCATE ALL"), Some(DeallocateAll));
        assert_eq!(session_command("reset \"Weird\""), None);
        assert_eq!(session_command("reset all now"), None);
        assert_eq!(session_command("select 1"), None);
        assert_eq!(identifier("\"S1\""), "S1");
        assert_eq!(identifier("S1"), "s1");
    }

    #[test]
    fn first_words() {
        assert_eq!(first_word("  /* citus-proxy: cache ttl=5s */ select 1"), "select");
        assert_eq!(first_word("-- c\nVACUUM t"), "VACUUM");
        assert_eq!(first_word("merge into t"), "merge");
        assert_eq!(first_word(""), "");
    }

    #[test]
    fn values() {
        assert_eq!(parse_search_path("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(parse_search_path("App, 'x'"), vec!["app", "x"]);
        assert_eq!(parse_bool("'on'"), Some(true));
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert!(is_default("DEFAULT"));
        assert!(!is_default("'default'"));
        assert_eq!(
            startup_options("-c search_path=app  --application-name=x\\ y -cwork_mem=4MB"),
            vec![("search_path".into(), "app".into()), ("application_name".into(), "x y".into()), ("work_mem".into(), "4MB".into())]
        );
    }
}
