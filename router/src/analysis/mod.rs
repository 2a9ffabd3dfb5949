//! Statement analysis: what a statement is and touches (public `Analysis`), plus the model the
//! router evaluates per decision. Pure: no topology needed, so it is cached per shape.

mod builder;
mod dml;
mod expr;
pub(crate) mod functions;
mod info;
pub(crate) mod model;
mod query;
mod query_util;
mod shape_of;
mod statement;

pub use info::TableName;
pub(crate) use statement::analyze_statements;

use serde::Serialize;
use std::time::Duration;

/// Transaction control statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxControl {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Release,
    RollbackToSavepoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StatementKind {
    Read,
    Write,
    Ddl,
    Utility,
    Transaction {
        control: TxControl,
    },
    CopyFrom,
    CopyTo,
    Set {
        name: String,
        value: String,
        local: bool,
    },
    /// A SELECT calling a Citus UDF that changes metadata (create_distributed_table, …).
    CitusMetadataCall {
        function: String,
    },
    /// The text could not be parsed; `first_word` is the statement's first keyword.
    Unparsed {
        first_word: String,
    },
}

impl StatementKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "ddl",
            StatementKind::Utility => "utility",
            StatementKind::Transaction { control: TxControl::Begin } => "begin",
            StatementKind::Transaction { control: TxControl::Commit } => "commit",
            StatementKind::Transaction { control: TxControl::Rollback } => "rollback",
            StatementKind::Transaction { .. } => "savepoint",
            StatementKind::CopyFrom => "copy_from",
            StatementKind::CopyTo => "copy_to",
            StatementKind::Set { .. } => "set",
            StatementKind::CitusMetadataCall { .. } => "citus_metadata_call",
            StatementKind::Unparsed { .. } => "unparsed",
        }
    }
}

/// `/* citus-proxy: cache ttl=30s */` (or `cache off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheHint {
    pub ttl: Option<Duration>,
    pub disabled: bool,
}

/// Inputs of the latency class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShapeFacts {
    /// Aggregate calls in the top-level SELECT list / HAVING.
    pub has_aggregate: bool,
    /// All of them are count().
    pub only_count: bool,
    pub group_by: bool,
    /// ORDER BY a `<->`, `<=>` or `<#>` distance with a LIMIT.
    pub vector_search: bool,
    /// VALUES rows of an INSERT.
    pub insert_rows: usize,
}

/// What one statement is and touches.
#[derive(Debug, Clone, Serialize)]
pub struct StatementInfo {
    pub kind: StatementKind,
    /// Relations referenced anywhere (names as written, folded).
    pub tables: Vec<TableName>,
    /// Function names called (lower case, without schema).
    pub functions: Vec<String>,
    /// Calls a function that is not known to be deterministic (now(), random(), nextval(), …;
    /// unknown functions count as volatile).
    pub volatile: bool,
    /// FOR UPDATE / FOR SHARE.
    pub locking: bool,
    pub touches_temp: bool,
    pub touches_catalog: bool,
    /// DDL or a Citus UDF that changes tables, shards, placements or nodes.
    pub changes_metadata: bool,
    pub facts: ShapeFacts,
    #[serde(skip)]
    pub(crate) model: model::Model,
    /// The model's last binding to a topology (see `plan::bind_cache`).
    #[serde(skip)]
    pub(crate) bindings: crate::plan::BindCache,
}

impl StatementInfo {
    pub fn is_read_only(&self) -> bool {
        matches!(self.kind, StatementKind::Read | StatementKind::CopyTo) && !self.volatile_write()
    }
    fn volatile_write(&self) -> bool {
        self.functions.iter().any(|f| matches!(f.as_str(), "nextval" | "setval")) || self.changes_metadata
    }
}

/// The cached analysis of a query text (one or more statements).
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub statements: Vec<StatementInfo>,
    pub cache_hint: Option<CacheHint>,
    /// Set when sqlparser could not parse the text (the proxy forwards it unchanged).
    pub parse_error: Option<String>,
    /// First `$n` that stands for a stripped literal rather than a Bind parameter.
    #[serde(skip)]
    pub(crate) literal_base: u32,
    /// Names the statement's shape (see `shape::shape_id`), computed once per cached analysis.
    pub shape_id: u64,
}

impl Analysis {
    /// Union of the tables of all statements.
    pub fn tables(&self) -> Vec<&TableName> {
        let mut out: Vec<&TableName> = Vec::new();
        for t in self.statements.iter().flat_map(|s| &s.tables) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
    pub fn changes_metadata(&self) -> bool {
        self.statements.iter().any(|s| s.changes_metadata)
    }
    pub fn volatile(&self) -> bool {
        self.statements.iter().any(|s| s.volatile)
    }
    pub fn is_read_only(&self) -> bool {
        !self.statements.is_empty() && self.statements.iter().all(StatementInfo::is_read_only)
    }
    /// The kind of a single-statement text (the first statement's otherwise).
    pub fn kind(&self) -> Option<&StatementKind> {
        self.statements.first().map(|s| &s.kind)
    }
}
