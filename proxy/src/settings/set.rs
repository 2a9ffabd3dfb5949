//! A SET statement as the router reports it, put in one form: which setting, which value (or its
//! default), session- or transaction-scoped. The router gives `SET name = value` as name and
//! value; the special forms (SET ROLE, SET TIME ZONE, SET SESSION AUTHORIZATION…) arrive as their
//! whole text, which is read here.

use super::words::{identifier, is_default};

#[derive(Debug, PartialEq, Eq)]
pub enum SetChange {
    /// `value` None: back to the setting's default.
    Assign { name: String, value: Option<String>, local: bool },
    /// No lasting effect on what later statements read (SET TRANSACTION …).
    Nothing,
}

pub fn set_change(name: &str, value: &str, local: bool) -> SetChange {
    let mut words = value.split_whitespace();
    if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("set")) {
        let value = (!is_default(value)).then(|| value.to_string());
        return SetChange::Assign { name: name.to_ascii_lowercase(), value, local };
    }
    // The whole text of a special form: `SET [SESSION | LOCAL] …`.
    let mut local = local;
    let mut first = words.next().unwrap_or_default();
    if first.eq_ignore_ascii_case("local") || first.eq_ignore_ascii_case("session") {
        let next = words.clone().next().unwrap_or_default();
        // `SET SESSION AUTHORIZATION` / `SET SESSION CHARACTERISTICS` are forms of their own.
        if !(next.eq_ignore_ascii_case("authorization") || next.eq_ignore_ascii_case("characteristics")) {
            local = first.eq_ignore_ascii_case("local");
            first = words.next().unwrap_or_default();
        }
    }
    let rest: Vec<&str> = words.collect();
    let joined = || rest.join(" ");
    let key = first.to_ascii_lowercase();
    let (name, value) = match key.as_str() {
        "transaction" => return SetChange::Nothing,
        "role" => ("role".to_string(), rest.first().map(|r| identifier(r.trim_matches('\''))).filter(|r| r != "none")),
        "time" => (
            "timezone".to_string(),
            rest.get(1..).map(|v| v.join(" ")).filter(|v| !v.is_empty() && !is_default(v) && !v.eq_ignore_ascii_case("local")),
        ),
        "names" => ("client_encoding".to_string(), Some(joined()).filter(|v| !is_default(v))),
        "session" if rest.first().is_some_and(|w| w.eq_ignore_ascii_case("authorization")) => {
            ("session_authorization".to_string(), rest.get(1..).map(|v| v.join(" ")).filter(|v| !is_default(v)))
        }
        // Anything else keeps its whole text as its value: a different text, a different key.
        _ => (name.to_ascii_lowercase(), Some(value.to_string())),
    };
    SetChange::Assign { name, value, local }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(name: &str, value: Option<&str>, local: bool) -> SetChange {
        SetChange::Assign { name: name.into(), value: value.map(String::from), local }
    }

    #[test]
    fn forms() {
        assert_eq!(set_change("search_path", "app, public", false), assign("search_path", Some("app, public"), false));
        assert_eq!(set_change("Search_Path", "DEFAULT", true), assign("search_path", None, true));
        assert_eq!(set_change("role", "SET ROLE alice", false), assign("role", Some("alice"), false));
        assert_eq!(set_change("local", "SET LOCAL ROLE \"Bob\"", false), assign("role", Some("Bob"), true));
        assert_eq!(set_change("role", "SET ROLE NONE", false), assign("role", None, false));
        assert_eq!(set_change("time", "SET TIME ZONE 'UTC'", false), assign("timezone", Some("'UTC'"), false));
        assert_eq!(set_change("local", "SET LOCAL TIME ZONE DEFAULT", false), assign("timezone", None, true));
        assert_eq!(set_change("transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", false), SetChange::Nothing);
        assert_eq!(set_change("session", "SET SESSION AUTHORIZATION alice", false), assign("session_authorization", Some("alice"), false));
    }
}
