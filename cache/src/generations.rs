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
//! An `epoch` (random) covers everything: it is part of every key, and replaced by a flush and
//! whenever Redis's counters cannot be trusted, so counters that start again from older values
//! can never produce a key used before.
//!
//! `seq` counts every change of the hash (each write's bumps, each new epoch) and never goes
//! down, across epochs too. Each instance remembers the highest `seq` it has seen (its own
//! bumps, readings, other instances' announcements); Redis answering a lower one than was seen
//! before the request was sent has gone back in time: restarted from an older snapshot, failed
//! over to a replica that lagged, or reloaded its data. Its counters are then an old state that
//! later writes will walk through again, and its entries may predate writes it forgot, so the
//! instance installs a new epoch (see `facade.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use crate::facts::{ShardScope, StatementFacts, TableId, WriteScope};

pub(crate) const EPOCH_FIELD: &str = "epoch";
pub(crate) const SEQ_FIELD: &str = "seq";

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
/// so exact); with Redis it is a hint used to guess the key before Redis confirms it, plus the
/// highest `seq` seen, against which every answer of Redis is checked.
#[derive(Debug)]
pub(crate) struct LocalView {
    state: RwLock<ViewState>,
    /// Highest `seq` seen; only grows. Apart from the lock so a confirmed hit needs no write lock.
    seen: AtomicU64,
}

#[derive(Debug)]
struct ViewState {
    epoch: u64,
    gens: HashMap<String, u64>,
}

/// What [`LocalView::observe`] made of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Same epoch as the view; counters taken in.
    Same,
    /// Another epoch, at least as recent as anything seen: adopted (the caller drops what it
    /// cached under the old one).
    NewEpoch,
    /// Another epoch, older than what was seen since (a reading overtaken by a newer epoch).
    Older,
}

impl LocalView {
    pub fn new(epoch: u64) -> Self {
        LocalView { state: RwLock::new(ViewState { epoch, gens: HashMap::new() }), seen: AtomicU64::new(0) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ViewState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ViewState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self, fields: &[String]) -> Snapshot {
        let s = self.read();
        Snapshot { epoch: s.epoch, gens: fields.iter().map(|f| (f.clone(), s.gens.get(f).copied().unwrap_or(0))).collect() }
    }

    /// The highest `seq` seen so far. Read it before sending a request whose answer is to be
    /// checked: Redis executed everything seen before the request was sent.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// Records a `seq` Redis reported under the epoch the view already has.
    pub fn saw(&self, seq: u64) {
        self.seen.fetch_max(seq, Ordering::AcqRel);
    }

    /// Increments locally (the authoritative path without Redis).
    pub fn bump(&self, fields: &[String]) {
        let mut s = self.write();
        for f in fields {
            *s.gens.entry(f.clone()).or_insert(0) += 1;
        }
    }

    /// Takes in counters read from Redis (or announced on pub/sub) under `epoch` at `seq`.
    /// Counters only grow within an epoch, so the larger value is the newer one. The caller has
    /// already made sure the reading is not a rollback.
    pub fn observe(&self, epoch: u64, seq: u64, values: &[(String, u64)]) -> Observed {
        let mut s = self.write();
        let out = if s.epoch == epoch {
            Observed::Same
        } else if seq >= self.seen() {
            s.epoch = epoch;
            s.gens.clear();
            Observed::NewEpoch
        } else {
            return Observed::Older;
        };
        self.saw(seq);
        for (f, v) in values {
            let slot = s.gens.entry(f.clone()).or_insert(0);
            *slot = (*slot).max(*v);
        }
        out
    }

    /// Starts `epoch` locally (a flush, before Redis confirms it).
    pub fn rotate(&self, epoch: u64) {
        let mut s = self.write();
        s.epoch = epoch;
        s.gens.clear();
    }
}

/// One answer of Redis about the generations hash: its epoch (None: the hash has none, i.e.
/// Redis lost it or never had it), its `seq`, and the counters asked for, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    pub epoch: Option<u64>,
    pub seq: u64,
    pub values: Vec<u64>,
}

impl Reading {
    /// True when this reading shows exactly `guess` and is no older than `seen` (the `seq`
    /// seen before it was requested): the guessed key is the current one.
    pub fn confirms(&self, guess: &Snapshot, seen: u64) -> bool {
        self.epoch == Some(guess.epoch) && self.seq >= seen && guess.gens.iter().map(|(_, v)| v).eq(self.values.iter())
    }

    /// The counters paired with their fields (`fields` as passed to the request).
    pub fn pairs(&self, fields: &[String]) -> Vec<(String, u64)> {
        fields.iter().cloned().zip(self.values.iter().copied()).collect()
    }
}

/// A random epoch; falls back to the clock if the OS has no randomness (still unique enough:
/// only collisions with a past epoch of the same deployment matter).
pub(crate) fn new_epoch() -> u64 {
    getrandom::u64()
        .unwrap_or_else(|_| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64))
}

/// Pub/sub events between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Counters after a write, under an epoch, at a `seq`.
    Bumped { epoch: u64, seq: u64, values: Vec<(String, u64)> },
    /// A new epoch (a flush, or a reset after Redis went back in time) at a `seq`.
    Flushed { epoch: u64, seq: u64 },
}

impl Event {
    /// `G <epoch> <seq>` then `<value> <len>:<field>` per counter; field names are
    /// length-prefixed because quoted identifiers may contain any character. `F <epoch> <seq>`
    /// for a new epoch. (Upper-case tags: versions without `seq` used lower-case ones, and each
    /// version ignores the other's announcements, which are only hints.)
    pub fn encode(&self) -> String {
        match self {
            Event::Flushed { epoch, seq } => format!("F {epoch} {seq}"),
            Event::Bumped { epoch, seq, values } => {
                let mut s = format!("G {epoch} {seq}");
                for (field, value) in values {
                    s.push_str(&format!(" {value} {}:{field}", field.len()));
                }
                s
            }
        }
    }

    pub fn decode(msg: &str) -> Option<Event> {
        let (kind, rest) = msg.split_once(' ')?;
        let (epoch, rest) = rest.split_once(' ')?;
        let epoch = epoch.parse().ok()?;
        let (seq, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let seq = seq.parse().ok()?;
        match kind {
            "F" if rest.is_empty() => Some(Event::Flushed { epoch, seq }),
            "G" => {
                let mut values = Vec::new();
                while !rest.is_empty() {
                    let (value, after) = rest.split_once(' ')?;
                    let (len, after) = after.split_once(':')?;
                    let len: usize = len.parse().ok()?;
                    let field = after.get(..len)?;
                    values.push((field.to_string(), value.parse().ok()?));
                    rest = after.get(len..)?.strip_prefix(' ').unwrap_or(after.get(len..)?);
                }
                Some(Event::Bumped { epoch, seq, values })
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
        let e = Event::Bumped { epoch: 7, seq: 40, values: vec![("t|\"a b\".\"c:d\"".into(), 3), ("a|x".into(), 12)] };
        assert_eq!(Event::decode(&e.encode()), Some(e));
        let f = Event::Flushed { epoch: 99, seq: 41 };
        assert_eq!(Event::decode(&f.encode()), Some(f));
        assert_eq!(Event::decode("G 1 2 5 99:x"), None);
        // The format of versions without `seq` is ignored, not misread.
        assert_eq!(Event::decode("g 1 5 1:x"), None);
        assert_eq!(Event::decode("f 99"), None);
    }

    #[test]
    fn the_view_adopts_only_newer_epochs_and_never_forgets_a_seq() {
        let view = LocalView::new(1);
        let f = vec![("a|x".to_string(), 4)];
        assert_eq!(view.observe(5, 10, &f), Observed::NewEpoch);
        assert_eq!(view.seen(), 10);
        assert_eq!(view.observe(5, 12, &[("a|x".into(), 3)]), Observed::Same);
        assert_eq!(view.snapshot(&["a|x".into()]).gens(), &[("a|x".to_string(), 4)], "counters only grow");
        // A reading of an older epoch, overtaken by what was seen since, changes nothing.
        assert_eq!(view.observe(6, 11, &f), Observed::Older);
        assert_eq!((view.snapshot(&[]).epoch(), view.seen()), (5, 12));
        assert_eq!(view.observe(7, 13, &[]), Observed::NewEpoch);
        assert_eq!(view.snapshot(&["a|x".into()]).gens(), &[("a|x".to_string(), 0)]);
    }

    #[test]
    fn a_reading_confirms_a_guess_only_if_it_is_not_older_than_what_was_seen() {
        let guess = Snapshot::new(5, vec![("a|x".into(), 4), ("t|x".into(), 2)]);
        let reading = Reading { epoch: Some(5), seq: 9, values: vec![4, 2] };
        assert!(reading.confirms(&guess, 9));
        assert!(!reading.confirms(&guess, 10), "Redis went back in time");
        assert!(!Reading { values: vec![4, 3], ..reading.clone() }.confirms(&guess, 9));
        assert!(!Reading { epoch: None, ..reading.clone() }.confirms(&guess, 0));
        assert!(!Reading { epoch: Some(6), ..reading }.confirms(&guess, 0));
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
