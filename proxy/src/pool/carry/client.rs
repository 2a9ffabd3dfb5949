//! One client's settings as statements to replay, with transaction scope: changes wait in the
//! transaction until it commits, savepoints can drop the later ones, a rollback drops them all.

use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;

use super::quote::startup_set;
use super::statement::{read_statement, Change, Command};
use super::NOT_RESET_BY_RESET_ALL;
use crate::settings::words::startup_options;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// Distinguishes clients in a server connection's record (versions alone could coincide).
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

pub(super) type Replay = IndexMap<String, String>;

#[derive(Debug)]
pub struct ClientSettings {
    id: u64,
    /// What RESET goes back to: the startup parameters' statements.
    startup: Replay,
    /// Setting name (lower case) → the statement that sets it, in the order the client set them
    /// (a later SET may depend on an earlier one, SET ROLE first of all).
    current: Replay,
    /// Changes of the open transaction, kept at commit.
    pending: Vec<Change>,
    /// Open savepoints: name and how many pending changes came before it.
    savepoints: Vec<(String, usize)>,
    /// Committed changes the server connection has not been told about (`ServerSettings::follow`).
    log: Vec<Change>,
    version: u64,
}

impl ClientSettings {
    /// `startup`: the client's startup parameters (user, database… are skipped; `options` is
    /// read for `-c name=value` / `--name=value`).
    pub fn new(startup: &[(String, String)]) -> ClientSettings {
        let mut defaults = Replay::new();
        let mut add = |name: &str, value: &str| {
            let name = name.to_ascii_lowercase();
            let text = startup_set(&name, value);
            defaults.shift_remove(&name);
            defaults.insert(name, text);
        };
        for (name, value) in startup {
            let lower = name.to_ascii_lowercase();
            if lower == "options" {
                for (k, v) in startup_options(value) {
                    add(&k, &v);
                }
            } else if !NOT_SETTINGS.contains(&lower.as_str()) && !lower.starts_with("_pq_.") {
                add(&lower, value);
            }
        }
        ClientSettings {
            id: NEXT_CLIENT.fetch_add(1, Ordering::Relaxed),
            current: defaults.clone(),
            startup: defaults,
            pending: Vec::new(),
            savepoints: Vec::new(),
            log: Vec::new(),
            version: 0,
        }
    }

    /// One statement the client ran in the current transaction (or as its own implicit one).
    /// It counts once `on_transaction_end(true)` says the transaction committed.
    pub fn on_statement(&mut self, sql: &str) {
        match read_statement(sql) {
            Command::Change(change) => self.pending.push(change),
            Command::Savepoint(name) => self.savepoints.push((name, self.pending.len())),
            Command::RollbackTo(name) => {
                // The savepoint stays, the changes after it go.
                if let Some(i) = self.savepoints.iter().rposition(|(n, _)| *n == name) {
                    self.savepoints.truncate(i + 1);
                    if let Some(&(_, len)) = self.savepoints.last() {
                        self.pending.truncate(len);
                    }
                }
            }
            Command::Release(name) => {
                if let Some(i) = self.savepoints.iter().rposition(|(n, _)| *n == name) {
                    self.savepoints.truncate(i);
                }
            }
            Command::Nothing => {}
        }
    }

    /// The transaction ended. `committed`: COMMIT of a transaction block that had not failed,
    /// or an implicit transaction (outside a block) whose statements all succeeded. A SET
    /// inside a block survives COMMIT and is undone by ROLLBACK; SET LOCAL never survives.
    pub fn on_transaction_end(&mut self, committed: bool) {
        self.savepoints.clear();
        if !committed {
            self.pending.clear();
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        for change in &pending {
            self.apply(change);
        }
        self.log.extend(pending);
    }

    /// Changes on every change of the settings a server must hold for this client.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Setting name → the statement that sets it, in replay order.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.current.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.current.get(name).map(String::as_str)
    }

    pub(super) fn current(&self) -> &Replay {
        &self.current
    }

    /// Committed changes not yet followed by a server connection.
    pub(super) fn take_log(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.log)
    }

    /// Gives the emptied log's buffer back, so the next transaction does not allocate it anew.
    pub(super) fn return_log(&mut self, mut log: Vec<Change>) {
        if self.log.is_empty() {
            log.clear();
            self.log = log;
        }
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Set { name, text } => self.assign(name, Some(text.clone())),
            Change::Reset(name) => self.assign(name, self.startup.get(name).cloned()),
            Change::ResetAll | Change::DiscardAll => {
                let mut next = self.startup.clone();
                if *change == Change::ResetAll {
                    for name in NOT_RESET_BY_RESET_ALL {
                        if let Some((k, v)) = self.current.get_key_value(*name) {
                            next.insert(k.clone(), v.clone());
                        }
                    }
                }
                if next != self.current {
                    self.current = next;
                    self.version += 1;
                }
            }
        }
    }

    fn assign(&mut self, name: &str, text: Option<String>) {
        if self.current.get(name) == text.as_ref() {
            return;
        }
        self.current.shift_remove(name);
        if let Some(text) = text {
            self.current.insert(name.to_string(), text);
        }
        self.version += 1;
    }
}
