//! The session as the cache keys it: database, login role and every setting that can change a
//! result — startup parameters, what the coordinator reports (ParameterStatus) and the SETs the
//! session ran outside a transaction block. What the proxy cannot follow (a SET inside a
//! transaction, which a ROLLBACK may undo; set_config(); DO blocks; procedures) marks the
//! session untracked, and nothing is cached for it any more.

use citus_proxy_cache::SessionView;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication"];

/// Functions that may change a setting the proxy does not see.
const CHANGES_SETTINGS: &[&str] = &["set_config"];

pub struct Settings {
    view: SessionView,
    /// Settings as they were at startup (what RESET ALL goes back to, with ParameterStatus).
    startup: Vec<(String, String)>,
    /// Names the session SET (lower case): RESET ALL forgets them.
    set_names: std::collections::BTreeSet<String>,
    /// Bumped by every change, so the hashed key prefix knows when to be made again.
    version: u64,
}

impl Settings {
    pub fn new(database: &str, role: &str, startup: &[(String, String)]) -> Settings {
        let mut view = SessionView { database: database.to_string(), role: role.to_string(), ..SessionView::default() };
        let startup: Vec<(String, String)> = startup
            .iter()
            .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        view.settings.extend(startup.iter().cloned());
        Settings { view, startup, set_names: Default::default(), version: 0 }
    }

    pub fn view(&self) -> &SessionView {
        &self.view
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn set_in_transaction(&mut self, yes: bool) {
        self.view.in_transaction = yes;
    }

    /// The coordinator reported a setting's value (authoritative, including after ROLLBACK).
    pub fn reported(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if self.view.settings.get(&name).map(String::as_str) != Some(value) {
            self.view.settings.insert(name, value.to_string());
            self.version += 1;
        }
    }

    /// A SET (not SET LOCAL, which ends with the transaction) relayed to the coordinator. The
    /// value is kept as written (a ParameterStatus that follows replaces it with the server's
    /// spelling); the key leaves out the same harmless names whatever set them.
    pub fn set(&mut self, name: &str, value: &str, in_transaction: bool) {
        if in_transaction {
            self.view.untracked_settings = true;
        }
        let name = name.to_ascii_lowercase();
        self.view.settings.insert(name.clone(), value.to_string());
        self.set_names.insert(name);
        self.version += 1;
    }

    /// RESET name: back to a default the proxy does not know, which is what a session that
    /// never set it has too (or the server reports it).
    pub fn reset(&mut self, name: &str, in_transaction: bool) {
        if in_transaction {
            self.view.untracked_settings = true;
        }
        let name = name.to_ascii_lowercase();
        self.view.settings.remove(&name);
        if let Some((k, v)) = self.startup.iter().find(|(k, _)| *k == name) {
            self.view.settings.insert(k.clone(), v.clone());
        }
        self.version += 1;
    }

    /// RESET ALL / DISCARD ALL: back to the startup state (which the proxy knows again).
    pub fn reset_all(&mut self) {
        for name in std::mem::take(&mut self.set_names) {
            self.view.settings.remove(&name);
        }
        for (k, v) in &self.startup {
            self.view.settings.insert(k.clone(), v.clone());
        }
        self.view.untracked_settings = false;
        self.version += 1;
    }

    /// A statement the proxy cannot see into ran (DO, CALL, set_config(), an unparsable text).
    pub fn lose_track(&mut self) {
        self.view.untracked_settings = true;
    }
}

/// Whether calling these functions may change a session setting.
pub fn changes_settings(functions: &[String]) -> bool {
    functions.iter().any(|f| {
        let bare = f.rsplit('.').next().unwrap_or(f);
        CHANGES_SETTINGS.iter().any(|c| c.eq_ignore_ascii_case(bare))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reset_and_untracked() {
        let mut s = Settings::new("app", "alice", &[("user".into(), "alice".into()), ("DateStyle".into(), "ISO".into())]);
        assert_eq!(s.view().settings.get("datestyle").map(String::as_str), Some("ISO"));
        assert!(!s.view().settings.contains_key("user"));
        s.set("search_path", "app", false);
        assert_eq!(s.view().settings.get("search_path").map(String::as_str), Some("app"));
        s.reset("SEARCH_PATH", false);
        assert!(!s.view().settings.contains_key("search_path"));
        s.set("DateStyle", "'German'", false);
        s.reset("datestyle", false);
        assert_eq!(s.view().settings.get("datestyle").map(String::as_str), Some("ISO"), "back to the startup value");
        s.set("timezone", "'UTC'", true);
        assert!(s.view().untracked_settings, "a SET a ROLLBACK may undo");
        s.reset_all();
        assert!(!s.view().untracked_settings);
        assert!(!s.view().settings.contains_key("timezone"));
        assert!(changes_settings(&["pg_catalog.set_config".into()]));
        assert!(!changes_settings(&["lower".into()]));
    }
}
