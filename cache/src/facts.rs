//! What the proxy tells the cache about a statement, a session and a write. The cache does not
//! parse SQL: the router's analysis arrives here as plain values.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A table as the router resolved it (schema-qualified, names as stored in the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    pub schema: String,
    pub name: String,
}

impl TableId {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableId { schema: schema.into(), name: name.into() }
    }
}

impl fmt::Display for TableId {
    /// Quoted like PostgreSQL quotes identifiers, so the text is unambiguous whatever the names
    /// contain (it is used inside Redis field names).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\".\"{}\"", self.schema.replace('"', "\"\""), self.name.replace('"', "\"\""))
    }
}

/// One shard of one distributed table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardRef {
    pub table: TableId,
    pub shard_id: u64,
}

/// Which shards a read or a write touches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ShardScope {
    /// Every shard of every table involved (multi-shard, unknown, reference or local tables).
    #[default]
    All,
    /// The router proved the statement touches exactly these shards: at most one per table.
    /// Tables of the statement not listed here are treated as `All`.
    Shards(Vec<ShardRef>),
}

impl ShardScope {
    /// The one shard of `table`, when the scope is shard-precise for it.
    pub fn shard_of(&self, table: &TableId) -> Option<u64> {
        match self {
            ShardScope::All => None,
            ShardScope::Shards(shards) => shards.iter().find(|s| &s.table == table).map(|s| s.shard_id),
        }
    }
}

/// The router's facts about one statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatementFacts {
    /// A plain read: SELECT/VALUES/TABLE/SHOW without data-modifying CTEs, not SELECT INTO.
    pub read_only: bool,
    /// Every table read, views expanded where the router can.
    pub tables: Vec<TableId>,
    pub shard_scope: ShardScope,
    /// Every function the statement calls, as written (possibly schema-qualified), including
    /// the SQL-value keywords (`CURRENT_TIMESTAMP`, `LOCALTIME`, `CURRENT_DATE`, …). The cache
    /// classifies them: see [`crate::function_is_cacheable`].
    pub functions: Vec<String>,
    /// FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE.
    pub has_locking_clause: bool,
    /// Temporary tables, pg_catalog / information_schema / Citus catalogs.
    pub touches_temp_or_catalog: bool,
    /// Reads a view or a relation missing from the metadata snapshot.
    pub reads_unknown_relation: bool,
    /// The TTL of the statement's hint comment (read by the router from the raw text).
    pub hint: Option<Duration>,
    /// The router's literal-stripped shape hash (matched against `shape` rules).
    pub shape: u64,
}

/// What the cache needs to know about the client's session. The proxy keeps one per session and
/// updates it from startup parameters, ParameterStatus messages and the SET/RESET it relays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionView {
    pub database: String,
    /// The authenticated (login) role.
    pub role: String,
    /// An explicit transaction block is open (ReadyForQuery status `T` or `E`).
    pub in_transaction: bool,
    /// Every setting the session changed or the server reported (`search_path`, `role`,
    /// `TimeZone`, `DateStyle`, `IntervalStyle`, `extra_float_digits`, `client_encoding`,
    /// custom `app.*` GUCs…). All are folded into the key (a query can read any of them with
    /// current_setting()); the proxy leaves out the ones its operator lists in
    /// `cache.ignored_settings`. Names are case-insensitive.
    pub settings: BTreeMap<String, String>,
    /// The session may have changed a setting the proxy could not see (it called set_config(),
    /// ran a DO block or a function that may SET). Nothing is cached for it.
    pub untracked_settings: bool,
    /// Writes of the open transaction (or implicit multi-statement batch), invalidated at
    /// COMMIT; reads of those tables bypass the cache until then.
    pub pending_writes: PendingWrites,
}

/// What a write touched, for [`crate::Cache::invalidate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// INSERT/UPDATE/DELETE/MERGE/TRUNCATE/COPY FROM/DDL on known tables: shard-precise for the
    /// tables `shard_scope` lists with a single shard, table-wide for the others.
    Tables { tables: Vec<TableId>, shard_scope: ShardScope },
    /// Everything cached becomes stale: writes whose tables are unknown (a function call with
    /// side effects, DROP SCHEMA … CASCADE) and privilege changes (GRANT, REVOKE, ALTER ROLE,
    /// ALTER DEFAULT PRIVILEGES, CREATE/ALTER POLICY), which change what a role may read.
    Everything,
}

impl WriteScope {
    pub fn tables(tables: Vec<TableId>) -> Self {
        WriteScope::Tables { tables, shard_scope: ShardScope::All }
    }

    pub fn shard(table: TableId, shard_id: u64) -> Self {
        WriteScope::Tables { tables: vec![table.clone()], shard_scope: ShardScope::Shards(vec![ShardRef { table, shard_id }]) }
    }

    fn touches(&self, table: &TableId) -> bool {
        match self {
            WriteScope::Everything => true,
            WriteScope::Tables { tables, shard_scope } => {
                tables.contains(table) || matches!(shard_scope, ShardScope::Shards(s) if s.iter().any(|r| &r.table == table))
            }
        }
    }
}

/// Writes a session made inside a transaction that is not committed yet.
///
/// Usage by the proxy: `record` each write relayed while a transaction (explicit or an implicit
/// multi-statement batch) is open; at the COMMIT's ReadyForQuery call
/// [`crate::Cache::invalidate`] for each of `take()` before relaying it; at ROLLBACK `clear()`
/// (nothing changed). When the outcome is unknown (connection lost), invalidate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PendingWrites {
    scopes: Vec<WriteScope>,
}

impl PendingWrites {
    pub fn record(&mut self, scope: WriteScope) {
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Whether a read of `tables` could see this session's own uncommitted writes.
    pub fn conflicts(&self, tables: &[TableId]) -> bool {
        self.scopes.iter().any(|s| matches!(s, WriteScope::Everything) || tables.iter().any(|t| s.touches(t)))
    }

    pub fn take(&mut self) -> Vec<WriteScope> {
        std::mem::take(&mut self.scopes)
    }

    pub fn clear(&mut self) {
        self.scopes.clear();
    }
}
