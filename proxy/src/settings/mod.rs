//! One session's settings, as PostgreSQL holds them: the startup parameters and the server's
//! reported values, then every SET / SET LOCAL / RESET / SET … TO DEFAULT / RESET ALL / DISCARD
//! ALL the session ran, with transaction scope (a SET in a transaction that rolls back, and any
//! SET LOCAL, is gone when it ends). Routing (search_path), the routing NOTICE switch and the
//! cache key all read this one tracker.
//!
//! What the proxy cannot follow (set_config(), DO, CALL, EXECUTE, a text it cannot parse, a
//! ROLLBACK TO SAVEPOINT after a change) marks the settings *untracked*: routing keeps its best
//! guess, and nothing is cached for the session until DISCARD ALL.

mod set;
pub mod temp;
pub mod words;

use std::collections::BTreeMap;
use std::sync::Arc;

use citus_proxy_router::analysis::{StatementKind, TxControl};
use citus_proxy_router::StatementInfo;

pub use set::{set_change, SetChange};
pub use temp::TempRelations;
pub use words::{parse_bool, parse_search_path, session_command, SessionCommand};

use crate::wire::ready::TxStatus;

/// The custom setting that turns routing notices on for a session (PostgreSQL accepts any
/// two-part name, so the statement itself still goes to the coordinator).
pub const REPORT_SETTING: &str = "citus_proxy.report_routing";

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// Settings RESET ALL leaves alone (PostgreSQL's GUC_NO_RESET_ALL among those a result can
/// depend on); DISCARD ALL resets them too.
const NOT_RESET_BY_RESET_ALL: &[&str] = &["role", "session_authorization"];

/// Functions that may change a setting the proxy does not see.
const CHANGES_SETTINGS: &[&str] = &["set_config"];

type Values = BTreeMap<String, String>;

/// A placeholder that lets a map shared three ways be updated in place.
static EMPTY: std::sync::LazyLock<Arc<Values>> = std::sync::LazyLock::new(|| Arc::new(Values::new()));

/// Changes since the session was last idle outside a transaction: kept at COMMIT, dropped at
/// ROLLBACK or when the (possibly implicit) transaction failed.
#[derive(Debug, Default)]
struct Unit {
    failed: bool,
    rollback: bool,
    /// A ROLLBACK TO SAVEPOINT undid an unknown part of the changes.
    partly_undone: bool,
    /// Session-level values set in this unit (None: back to the default), in order.
    session_sets: Vec<(String, Option<String>)>,
    /// ParameterStatus values reported during the unit: the server's word is final.
    reported: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct SessionSettings {
    login_role: String,
    /// What RESET puts back: startup parameters and the values reported before the first
    /// ReadyForQuery. A setting in none of them is absent (the server's default).
    defaults: Arc<Values>,
    /// As of the last time the session was idle.
    committed: Arc<Values>,
    /// What the next statement sees.
    current: Arc<Values>,
    unit: Unit,
    /// A statement was sent or a ReadyForQuery seen: reports are no longer startup defaults.
    started: bool,
    untracked: bool,
    /// Bumped by every change of `current` or `untracked`.
    version: u64,
    /// search_path when the session has none of its own (`routing.search_path`).
    default_search_path: String,
    /// Derived from `current`: the parsed search_path (`$user` substituted) and the NOTICE switch.
    search_path: Vec<String>,
    report: bool,
}

impl SessionSettings {
    /// `startup` holds the client's startup parameters (user and database included).
    pub fn new(login_role: &str, startup: &[(String, String)], default_search_path: &str) -> SessionSettings {
        let mut defaults = Values::new();
        for (k, v) in startup {
            let k = k.to_ascii_lowercase();
            if k == "options" {
                defaults.extend(words::startup_options(v));
            } else if !NOT_SETTINGS.contains(&k.as_str()) {
                defaults.insert(k, v.clone());
            }
        }
        // The three stay one map until they differ (thousands of pooled sessions hold them).
        let defaults = Arc::new(defaults);
        let mut s = SessionSettings {
            login_role: login_role.to_string(),
            committed: Arc::clone(&defaults),
            current: Arc::clone(&defaults),
            defaults,
            unit: Unit::default(),
            started: false,
            untracked: false,
            version: 0,
            default_search_path: default_search_path.to_string(),
            search_path: Vec::new(),
            report: false,
        };
        s.derive();
        s
    }

    /// Every setting the next statement sees (names in lower case).
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.current
    }

    pub fn search_path(&self) -> &[String] {
        &self.search_path
    }

    /// Whether the session asked for routing NOTICEs.
    pub fn report_routing(&self) -> bool {
        self.report
    }

    /// The session may have changed a setting the proxy could not see.
    pub fn untracked(&self) -> bool {
        self.untracked
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Follows the settings the statements of one Query or Bind change; `sql` is their text.
    pub fn on_statements(&mut self, statements: &[StatementInfo], sql: &str) {
        // ParameterStatus before the first statement describes the session as it started.
        self.started = true;
        for info in statements {
            match &info.kind {
                StatementKind::Set { name, value, local } => match set_change(name, value, *local) {
                    SetChange::Assign { name, value, local } => self.assign(name, value, local),
                    SetChange::Nothing => {}
                },
                StatementKind::Transaction { control: TxControl::Rollback } => self.unit.rollback = true,
                StatementKind::Transaction { control: TxControl::RollbackToSavepoint } => {
                    self.unit.failed = false;
                    self.unit.partly_undone = !self.unit.session_sets.is_empty() || self.current != self.committed;
                }
                StatementKind::Utility => self.utility(sql, statements.len() == 1),
                StatementKind::Unparsed { .. } => match session_command(sql) {
                    Some(SessionCommand::Reset(_) | SessionCommand::ResetAll) => self.utility(sql, true),
                    _ => self.lose_track(),
                },
                _ => {}
            }
            if changes_settings(&info.functions) {
                self.lose_track();
            }
        }
    }

    /// RESET, RESET ALL, DISCARD ALL change settings; DO, CALL and EXECUTE may change any.
    fn utility(&mut self, sql: &str, single: bool) {
        let command = if single { session_command(sql) } else { None };
        match command {
            Some(SessionCommand::Reset(name)) => self.assign(name.to_ascii_lowercase(), None, false),
            Some(SessionCommand::ResetAll) => self.reset_all(false),
            Some(SessionCommand::DiscardAll) => self.reset_all(true),
            Some(_) => {}
            None => {
                let word = words::first_word(sql);
                let is = |w: &str| word.eq_ignore_ascii_case(w);
                if !single || is("DO") || is("CALL") || is("EXECUTE") || is("RESET") {
                    self.lose_track();
                }
            }
        }
    }

    fn assign(&mut self, name: String, value: Option<String>, local: bool) {
        let effective = value.or_else(|| self.defaults.get(&name).cloned());
        let current = Arc::make_mut(&mut self.current);
        match &effective {
            Some(v) => current.insert(name.clone(), v.clone()),
            None => current.remove(&name),
        };
        if !local {
            self.unit.session_sets.push((name, effective));
        }
        self.changed();
    }

    fn reset_all(&mut self, discard: bool) {
        let names: Vec<String> = self.current.keys().chain(self.defaults.keys()).cloned().collect();
        for name in names {
            if discard || !NOT_RESET_BY_RESET_ALL.contains(&name.as_str()) {
                self.assign(name, None, false);
            }
        }
        if discard {
            self.untracked = false;
            self.changed();
        }
    }

    /// A statement the proxy cannot see into ran (DO, CALL, set_config(), an unreadable text).
    pub fn lose_track(&mut self) {
        if !self.untracked {
            self.untracked = true;
            self.changed();
        }
    }

    /// The coordinator reported a setting's value (authoritative, including after ROLLBACK).
    pub fn on_parameter_status(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        let differs = self.current.get(&name).map(String::as_str) != Some(value);
        if !self.started {
            // Before the first statement the three maps are one: updated in place, shared again.
            self.committed = Arc::clone(&EMPTY);
            self.current = Arc::clone(&EMPTY);
            Arc::make_mut(&mut self.defaults).insert(name, value.to_string());
            self.committed = Arc::clone(&self.defaults);
            self.current = Arc::clone(&self.defaults);
        } else {
            self.unit.reported.push((name.clone(), value.to_string()));
            if differs {
                Arc::make_mut(&mut self.current).insert(name, value.to_string());
            }
        }
        if differs {
            self.changed();
        }
    }

    /// An ErrorResponse: the statement failed, and so does an implicit transaction around it.
    pub fn on_error(&mut self) {
        self.unit.failed = true;
    }

    /// ReadyForQuery: at `I` the transaction (explicit, or the implicit one of a Query) is over,
    /// and its changes are kept or dropped.
    pub fn on_ready(&mut self, status: TxStatus) {
        self.started = true;
        match status {
            TxStatus::InTransaction => {}
            TxStatus::Failed => self.unit.failed = true,
            TxStatus::Idle => self.end_unit(),
        }
    }

    fn end_unit(&mut self) {
        let unit = std::mem::take(&mut self.unit);
        if !unit.failed && !unit.rollback {
            for (name, value) in unit.session_sets {
                let committed = Arc::make_mut(&mut self.committed);
                match value {
                    Some(v) => committed.insert(name, v),
                    None => committed.remove(&name),
                };
            }
            if unit.partly_undone {
                self.lose_track();
            }
        }
        for (name, value) in unit.reported {
            Arc::make_mut(&mut self.committed).insert(name, value);
        }
        let differs = self.current != self.committed;
        // Shared again (a clone of the pointer): the next change copies.
        self.current = Arc::clone(&self.committed);
        if differs {
            self.changed();
        }
    }

    fn changed(&mut self) {
        self.version += 1;
        self.derive();
    }

    fn derive(&mut self) {
        let path = self.current.get("search_path").map_or(self.default_search_path.as_str(), String::as_str);
        let role = self.current.get("role").filter(|r| !r.eq_ignore_ascii_case("none")).unwrap_or(&self.login_role);
        self.search_path.clear();
        for s in parse_search_path(path) {
            self.search_path.push(if s == "$user" { role.clone() } else { s });
        }
        self.report = self.current.get(REPORT_SETTING).and_then(|v| parse_bool(v)).unwrap_or(false);
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
mod tests;
