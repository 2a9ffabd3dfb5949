//! One server connection's prepared statements: the ids it holds, least recently used first,
//! at most `max_prepared_statements` of them; and whose unnamed statement it holds.

use hashlink::LinkedHashMap;

#[derive(Debug)]
pub struct ServerStatements {
    /// Front = least recently used. Nodes of removed entries are reused by the map, so touching
    /// and evicting do not allocate.
    lru: LinkedHashMap<u64, (), ahash::RandomState>,
    capacity: usize,
    unnamed: Unnamed,
}

/// The server's unnamed statement, as far as the proxy knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unnamed {
    /// None (a fresh connection, or dropped by a simple Query or a Close).
    Empty,
    /// A client's, as of that client's unnamed Parse number `generation`.
    Of { client: u64, generation: u64 },
    /// Maybe some: a Parse or Close of it was skipped by an error.
    Unknown,
}

impl ServerStatements {
    /// `capacity` 0: named statements are passed through unchanged (`max_prepared_statements`).
    pub fn new(capacity: usize) -> ServerStatements {
        let mut lru = LinkedHashMap::with_hasher(ahash::RandomState::new());
        lru.reserve(capacity.min(1024));
        ServerStatements { lru, capacity, unnamed: Unnamed::Empty }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.lru.contains_key(&id)
    }

    /// The ids held, least recently used first.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.lru.keys().copied()
    }

    /// Marks `id` used now; false if the server does not hold it.
    pub fn touch(&mut self, id: u64) -> bool {
        self.lru.to_back(&id).is_some()
    }

    /// Records `id` as prepared (most recently used). While the set is full, the least recently
    /// used id is removed first and given to `evict`, whose caller must Close it on the server
    /// before the Parse of `id`. Usually one; more after `restore` overfilled the set.
    pub fn insert(&mut self, id: u64, mut evict: impl FnMut(u64)) {
        if self.touch(id) {
            return;
        }
        while self.lru.len() >= self.capacity.max(1) {
            match self.lru.pop_front() {
                Some((old, ())) => evict(old),
                None => break,
            }
        }
        self.lru.insert(id, ());
    }

    /// A Parse of `id` never ran (an earlier error in its batch skipped it).
    pub fn forget(&mut self, id: u64) {
        self.lru.remove(&id);
    }

    /// A Close of `id` never ran: the server still holds it. Put back as least recently used;
    /// this may overfill the set until the next `insert`.
    pub fn restore(&mut self, id: u64) {
        if !self.lru.contains_key(&id) {
            self.lru.insert_front(id, ());
        }
    }

    /// The server dropped every named statement (`DISCARD ALL`, `DEALLOCATE ALL`).
    pub fn clear(&mut self) {
        self.lru.clear();
    }

    /// A CommandComplete from the server: `DISCARD ALL` and `DEALLOCATE ALL` dropped its
    /// prepared statements, whoever sent them (a client's SQL, a reset query).
    pub fn on_command_complete(&mut self, tag: &[u8]) {
        let tag = tag.strip_suffix(b"\0").unwrap_or(tag);
        if tag == b"DISCARD ALL" || tag == b"DEALLOCATE ALL" {
            self.clear();
        }
    }

    /// Whether the server holds this client's current unnamed statement.
    pub(super) fn has_unnamed(&self, client_key: u64, generation: u64) -> bool {
        self.unnamed == Unnamed::Of { client: client_key, generation }
    }

    /// Whether the server may hold some unnamed statement (then a client without one must not
    /// reach it).
    pub(super) fn may_hold_unnamed(&self) -> bool {
        self.unnamed != Unnamed::Empty
    }

    pub(super) fn set_unnamed(&mut self, client_key: u64, generation: u64) {
        self.unnamed = Unnamed::Of { client: client_key, generation };
    }

    /// The server has no unnamed statement: a simple Query (which drops it) or a Close of it ran.
    pub fn clear_unnamed(&mut self) {
        self.unnamed = Unnamed::Empty;
    }

    /// A Parse or Close of the unnamed statement was skipped: what the server holds is unknown.
    pub(super) fn unknown_unnamed(&mut self) {
        self.unnamed = Unnamed::Unknown;
    }
}
