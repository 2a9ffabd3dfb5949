//! One server connection's settings as the proxy made them, and the statements that make them a
//! client's.

use std::sync::atomic::{AtomicU64, Ordering};

use super::client::{ClientSettings, Replay};
use super::quote;
use super::statement::Change;
use super::NOT_RESET_BY_RESET_ALL;

#[derive(Debug, Default)]
pub struct ServerSettings {
    /// Setting → the statement that set it; absent = the server's own default.
    applied: Replay,
    /// (client id, version) the record is known to equal: the cheap path of `sync_sql`, which
    /// also sets it when a comparison finds them equal.
    /// Atomics only so the record stays `Sync`; one task uses a connection at a time.
    matches: Stamp,
}

/// (client id, version); client ids start at 1, so id 0 is "none".
#[derive(Debug, Default)]
struct Stamp {
    client: AtomicU64,
    version: AtomicU64,
}

impl Stamp {
    fn set(&self, stamp: Option<(u64, u64)>) {
        let (client, version) = stamp.unwrap_or((0, 0));
        self.client.store(client, Ordering::Relaxed);
        self.version.store(version, Ordering::Relaxed);
    }
    fn get(&self) -> Option<(u64, u64)> {
        let client = self.client.load(Ordering::Relaxed);
        (client != 0).then(|| (client, self.version.load(Ordering::Relaxed)))
    }
}

impl ServerSettings {
    pub fn new() -> ServerSettings {
        ServerSettings::default()
    }

    /// The server is back to its defaults (after `DISCARD ALL`).
    pub fn reset(&mut self) {
        self.applied.clear();
        self.matches.set(None);
    }

    /// The statements of `sync_sql` ran: the server now holds the client's settings.
    pub fn applied(&mut self, client: &ClientSettings) {
        self.applied.clone_from(client.current());
        self.matches.set(Some((client.id(), client.version())));
    }

    /// The client's transaction on this server ended: what its committed statements did to the
    /// server is recorded. RESET puts the server to *its* default, which is not the client's
    /// startup value; the record says so and the next sync sets it again.
    pub fn follow(&mut self, client: &mut ClientSettings) {
        let log = client.take_log();
        if log.is_empty() {
            client.return_log(log);
            return;
        }
        for change in &log {
            match change {
                Change::Set { name, text } => {
                    self.applied.shift_remove(name);
                    self.applied.insert(name.clone(), text.clone());
                }
                Change::Reset(name) => {
                    self.applied.shift_remove(name);
                }
                Change::ResetAll => self.applied.retain(|name, _| NOT_RESET_BY_RESET_ALL.contains(&name.as_str())),
                Change::DiscardAll => self.applied.clear(),
            }
        }
        client.return_log(log);
        self.matches.set((self.applied == *client.current()).then(|| (client.id(), client.version())));
    }

    /// Setting → statement, as the server holds them.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.applied.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Appends to `out` the statements that make `server` hold `client`'s settings, RESETs first,
/// then the client's SETs in its order; false (nothing written) when they already match.
/// Statements end with a newline before the `;`, so a trailing `--` comment in a client's SET
/// cannot swallow the next one.
pub fn sync_sql(client: &ClientSettings, server: &ServerSettings, out: &mut String) -> bool {
    let stamp = Some((client.id(), client.version()));
    if server.matches.get() == stamp {
        return false;
    }
    let start = out.len();
    let wanted = client.current();
    for name in server.applied.keys() {
        if !wanted.contains_key(name) {
            quote::reset(name, out);
            out.push_str("\n;");
        }
    }
    for (name, text) in wanted {
        if server.applied.get(name) != Some(text) {
            out.push_str(text);
            out.push_str("\n;");
        }
    }
    if out.len() == start {
        server.matches.set(stamp);
        return false;
    }
    true
}
