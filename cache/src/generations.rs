//! Generation counters: every cached key includes the counters of the tables and shards it read,
//! so a write makes older entries unreachable without finding or deleting them.
//!
//! Three counters per table, named by Redis hash field:
//! - `t|<table>`: bumped by table-wide writes; read by single-shard reads.
//! - `s|<table>|<shard>`: bumped by writes proven to touch that one shard; read by single-shard
//!   reads of that shard.
//! - `a|<table>`: bumped by every write; read by multi-shard reads.
//!
//! So a write to user 42's shard bumps `s|users|<42's shard>` and `a|users`: multi-shard reads
//! and reads of that shard miss, single-shard reads of other shards keep hitting.
//!
//! An `epoch` (random) covers everything: it is rotated by a flush, and re-created whenever
//! Redis lost the hash (restart without persistence), so counters that restart from 0 can never
//! produce a key used before.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use crate::facts::{ShardScope, StatementFacts, TableId, WriteScope};

pub(crate) const EPOCH_FIELD: &str = "epoch";

/// The generations a key was derived under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    epoch: u64,
    /// (field, counter), sorted by field; a counter never bumped is 0.
    gens: Vec<(String, u64)>,
}

impl Snapshot {
    pub fn new(epoch: u64, mut gens: Vec<(String, u64)>) -> Snapshot {
        gens.sort();
        Snapshot { epoch, gens }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn gens(&self) -> &[(String, u64)] {
        &self.gens
    }

    pub(crate) fn hash_into(&self, h: &mut Sha256) {
        h.update(self.epoch.to_le_bytes());
        h.update((self.gens.len() as u64).to_le_bytes());
        for (field, value) in &self.gens {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
            h.update(value.to_le_bytes());
        }
    }
}

// Counters are named by the table's bare name, not its schema: two instances (or a read and a
// write) that resolve a name through different search paths or metadata snapshots must still
// meet on the same counter. Tables of one name in several schemas share counters, which costs
// hit rate, never freshness. Shard ids are unique cluster-wide.
fn table_field(table: &TableId) -> String {
    format!("t|{}", bare(table))
}
fn any_field(table: &TableId) -> String {
    format!("a|{}", bare(table))
}
fn shard_field(table: &TableId, shard: u64) -> String {
    format!("s|{}|{shard}", bare(table))
}
fn bare(table: &TableId) -> String {
    format!("\"{}\"", table.name.replace('"', "\"\""))
}

/// The counters a read depends on, sorted and unique.
pub(crate) fn read_fields(facts: &StatementFacts) -> Vec<String> {
    let mut tables: Vec<&TableId> = facts.tables.iter().collect();
    if let ShardScope::Shards(shards) = &facts.shard_scope {
        tables.extend(shards.iter().map(|s| &s.table));
    }
    let mut fields = Vec::new();
    for table in tables {
        match facts.shard_scope.shard_of(table) {
            Some(shard) => {
                fields.push(table_field(table));
                fields.push(shard_field(table, shard));
            }
            None => fields.push(any_field(table)),
        }
    }
    fields.sort();
    fields.dedup();
    fields
}

/// The counters a write bumps; None for `Everything` (rotate the epoch instead).
pub(crate) fn write_fields(scope: &WriteScope) -> Option<Vec<String>> {
    let WriteScope::Tables { tables, shard_scope } = scope else {
        return None;
    };
    let mut all: Vec<&TableId> = tables.iter().collect();
    if let ShardScope::Shards(shards) = shard_scope {
        all.extend(shards.iter().map(|s| &s.table));
    }
    let mut fields = Vec::new();
    for table in all {
        fields.push(any_field(table));
        match shard_scope.shard_of(table) {
            Some(shard) => fields.push(shard_field(table, shard)),
            None => fields.push(table_field(table)),
        }
    }
    fields.sort();
    fields.dedup();
    Some(fields)
}

/// This instance's view of the generations. Without Redis it is the truth (bumped under a lock,
/// so exact); with Redis it is a hint used to guess the key before Redis confirms it.
#[derive(Debug)]
pub(crate) struct LocalView {
    state: RwLock<ViewState>,
}

#[derive(Debug)]
struct ViewState {
    epoch: u64,
    gens: HashMap<String, u64>,
}

impl LocalView {
    pub fn new(epoch: u64) -> Self {
        LocalView { state: RwLock::new(ViewState { epoch, gens: HashMap::new() }) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ViewState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ViewState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self, fields: &[String]) -> Snapshot {
        let s = self.read();
        Snapshot {
            epoch: s.epoch,
            gens: fields.iter().map(|f| (f.clone(), s.gens.get(f).copied().unwrap_or(0))).collect(),
        }
    }

    /// Increments locally (the authoritative path without Redis).
    pub fn bump(&self, fields: &[String]) {
        let mut s = self.write();
        for f in fields {
            *s.gens.entry(f.clone()).or_insert(0) += 1;
        }
    }

    /// Takes in counters read from Redis (or announced on pub/sub) under `epoch`. Counters only
    /// grow within an epoch, so the larger value is the newer one.
    pub fn observe(&self, epoch: u64, values: &[(String, u64)]) {
        let mut s = self.write();
        if s.epoch != epoch {
            s.epoch = epoch;
            s.gens.clear();
        }
        for (f, v) in values {
            let slot = s.gens.entry(f.clone()).or_insert(0);
            *slot = (*slot).max(*v);
        }
    }

    pub fn rotate(&self, epoch: u64) {
        let mut s = self.write();
        s.epoch = epoch;
        s.gens.clear();
    }
}

/// A random epoch; falls back to the clock if the OS has no randomness (still unique enough:
/// only collisions with a past epoch of the same deployment matter).
pub(crate) fn new_epoch() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    })
}

/// Pub/sub events between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Counters after a write, under an epoch.
    Bumped { epoch: u64, values: Vec<(String, u64)> },
    /// The cache was flushed; the new epoch.
    Flushed { epoch: u64 },
}

impl Event {
    /// `g <epoch>` then `<value> <len>:<field>` per counter; field names are length-prefixed
    /// because quoted identifiers may contain any character.
    pub fn encode(&self) -> String {
        match self {
            Event::Flushed { epoch } => format!("f {epoch}"),
            Event::Bumped { epoch, values } => {
                let mut s = format!("g {epoch}");
                for (field, value) in values {
                    s.push_str(&format!(" {value} {}:{field}", field.len()));
                }
                s
            }
        }
    }

    pub fn decode(msg: &str) -> Option<Event> {
        let (kind, rest) = msg.split_once(' ')?;
        let (epoch, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let epoch = epoch.parse().ok()?;
        match kind {
            "f" => Some(Event::Flushed { epoch }),
            "g" => {
                let mut values = Vec::new();
                while !rest.is_empty() {
                    let (value, after) = rest.split_once(' ')?;
                    let (len, after) = after.split_once(':')?;
                    let len: usize = len.parse().ok()?;
                    let field = after.get(..len)?;
                    values.push((field.to_string(), value.parse().ok()?));
                    rest = after.get(len..)?.strip_prefix(' ').unwrap_or(after.get(len..)?);
                }
                Some(Event::Bumped { epoch, values })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ShardRef;

    #[test]
    fn events_roundtrip() {
        let e = Event::Bumped { epoch: 7, values: vec![("t|\"a b\".\"c:d\"".into(), 3), ("a|x".into(), 12)] };
        assert_eq!(Event::decode(&e.encode()), Some(e));
        let f = Event::Flushed { epoch: 99 };
        assert_eq!(Event::decode(&f.encode()), Some(f));
        assert_eq!(Event::decode("g 1 5 99:x"), None);
    }

    #[test]
    fn fields_of_reads_and_writes() {
        let users = TableId::new("public", "users");
        let one = StatementFacts {
            tables: vec![users.clone()],
            shard_scope: ShardScope::Shards(vec![ShardRef { table: users.clone(), shard_id: 7 }]),
            ..Default::default()
        };
        assert_eq!(read_fields(&one), vec!["s|\"users\"|7", "t|\"users\""]);
        let all = StatementFacts { tables: vec![users.clone()], ..Default::default() };
        assert_eq!(read_fields(&all), vec!["a|\"users\""]);
        // Resolved through another schema, the same name meets the same counters.
        let other = StatementFacts { tables: vec![TableId::new("app", "users")], ..Default::default() };
        assert_eq!(read_fields(&other), read_fields(&all));
        let w = write_fields(&WriteScope::shard(users.clone(), 7)).unwrap_or_default();
        assert_eq!(w, vec!["a|\"users\"", "s|\"users\"|7"]);
        let w = write_fields(&WriteScope::tables(vec![users])).unwrap_or_default();
        assert_eq!(w, vec!["a|\"users\"", "t|\"users\""]);
    }
}
