//! One immutable snapshot of the cluster: Citus tables, their shards and placements, nodes and
//! the other relations the coordinator has. Built once per metadata refresh; `Send + Sync`.

mod build;
mod identity;
mod names;
mod shards;

pub(crate) use identity::{Identity, IdentityTag};
pub use names::Relation;

use crate::types::PgType;
use ahash::AHashMap;
use serde::Serialize;
use std::sync::Arc;

/// What kind of Citus table (from partmethod / repmodel / colocationid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableKind {
    /// Hash-distributed on a column.
    Hash,
    /// Range- or append-distributed (shard min/max are values of the column type).
    Range,
    Append,
    /// Replicated to every node.
    Reference,
    /// Added to metadata on the coordinator (`citus_add_local_table_to_metadata`).
    CitusLocal,
    /// Distributed without a key (schema-based sharding): one shard.
    SingleShard,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DistColumn {
    pub name: String,
    pub ty: PgType,
    /// False when the column's collation is non-deterministic: hashes then differ from the bytes'.
    pub hashable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: PgType,
    pub has_default: bool,
    /// int2/int4 with a sequence default (`serial`, identity): workers refuse to evaluate it.
    pub int_sequence_default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub id: i64,
    /// Hash tables: the int32 range; other kinds: None.
    pub hash_range: Option<(i32, i32)>,
    /// Range/append tables: integer bounds when the column is an integer type.
    pub int_range: Option<(Option<i64>, Option<i64>)>,
    /// Index of the shard among its table's shards sorted by min value (co-location "shard index").
    pub index: usize,
    /// Active primary nodes holding a healthy placement (indexes into `Topology::nodes`).
    pub nodes: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CitusTable {
    pub schema: String,
    pub name: String,
    pub kind: TableKind,
    pub colocation_id: u32,
    pub dist_column: Option<DistColumn>,
    /// Sorted by min value (hash tables: by `hash_range.0`).
    pub shards: Vec<Shard>,
    /// Live columns in attnum order; empty when COLUMNS_SQL was not loaded.
    pub columns: Vec<Column>,
    /// Hash ranges are the uniform split Citus creates, so index arithmetic equals binary search.
    pub uniform: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub node_id: i32,
    pub group_id: i32,
    pub host: String,
    pub port: u16,
    pub active: bool,
    pub role: String,
    pub should_have_shards: bool,
    /// `pg_dist_node.hasmetadata`.
    pub has_metadata: bool,
    /// `pg_dist_node.metadatasynced` (NULL read as false).
    pub metadata_synced: bool,
    /// `host:port`, formatted once and shared: a per-statement choice clones a refcount.
    #[serde(serialize_with = "serialize_str")]
    pub(crate) addr: Arc<str>,
}

fn serialize_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

impl Node {
    pub fn addr(&self) -> &str {
        &self.addr
    }
    /// The same `host:port`, shared (a cheap key for per-node pools).
    pub fn addr_shared(&self) -> &Arc<str> {
        &self.addr
    }
    /// Whether queries can be sent here (active primary in the default cluster).
    pub fn is_usable(&self) -> bool {
        self.active && self.role == "primary"
    }
    /// Whether this node can plan distributed queries itself (Citus 11+ syncs the metadata to
    /// every node): a usable primary whose metadata is present and current.
    pub fn plans_queries(&self) -> bool {
        self.is_usable() && self.has_metadata && self.metadata_synced
    }
    /// Group 0 is the coordinator's.
    pub fn is_coordinator(&self) -> bool {
        self.group_id == 0
    }
}

/// Identifies a table in one snapshot.
pub type TableId = usize;

#[derive(Debug, Default)]
pub struct Topology {
    tables: Vec<CitusTable>,
    /// schema → table → id (nested so lookups by &str allocate nothing).
    by_name: AHashMap<String, AHashMap<String, TableId>>,
    relations: AHashMap<String, AHashMap<String, char>>,
    nodes: Vec<Node>,
    /// Indexes of the nodes that `plans_queries()`, in node id order (computed in `build`).
    query_nodes: Vec<usize>,
    /// shard id → (table, position in `CitusTable::shards`).
    shard_index: AHashMap<i64, (TableId, usize)>,
    warnings: Vec<String>,
    /// Tells results derived from this snapshot (cached bindings) from those of another.
    identity: Identity,
}

impl Topology {
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }
    pub fn tables(&self) -> &[CitusTable] {
        &self.tables
    }
    pub fn table(&self, id: TableId) -> Option<&CitusTable> {
        self.tables.get(id)
    }
    pub fn table_by_name(&self, schema: &str, name: &str) -> Option<&CitusTable> {
        self.table_id(schema, name).and_then(|i| self.tables.get(i))
    }
    pub(crate) fn table_id(&self, schema: &str, name: &str) -> Option<TableId> {
        self.by_name.get(schema)?.get(name).copied()
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn node(&self, idx: usize) -> Option<&Node> {
        self.nodes.get(idx)
    }
    /// Indexes into `nodes()` of every node that `plans_queries()` (the coordinator included
    /// when it has metadata), in node id order: where spread reads may go.
    pub fn query_nodes(&self) -> &[usize] {
        &self.query_nodes
    }
    pub fn active_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_usable())
    }
    pub fn inactive_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.is_usable())
    }
    /// Number of shards of the table, by qualified name.
    pub fn shard_count(&self, schema: &str, name: &str) -> Option<usize> {
        self.table_by_name(schema, name).map(|t| t.shards.len())
    }
    /// Placements (shards) per node address, for metrics.
    pub fn shards_per_node(&self) -> Vec<(String, usize)> {
        let mut counts = vec![0usize; self.nodes.len()];
        for t in &self.tables {
            for s in &t.shards {
                for n in &s.nodes {
                    if let Some(c) = counts.get_mut(*n) {
                        *c += 1;
                    }
                }
            }
        }
        self.nodes.iter().zip(counts).map(|(n, c)| (n.addr().to_string(), c)).collect()
    }
    /// The table and shard for a shard id.
    pub fn shard(&self, shard_id: i64) -> Option<(&CitusTable, &Shard)> {
        let (t, s) = self.shard_index.get(&shard_id)?;
        let table = self.tables.get(*t)?;
        Some((table, table.shards.get(*s)?))
    }
    /// Problems found while building that did not stop the build (e.g. a shard with no placement).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// Whether a non-Citus relation with this qualified name exists, and its relkind.
    pub fn relation_kind(&self, schema: &str, name: &str) -> Option<char> {
        self.relations.get(schema)?.get(name).copied()
    }
}
