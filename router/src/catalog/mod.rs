//! Catalog rows as the proxy fetches them (text columns from `simple_query`), parsed into typed
//! rows. `Topology::build` turns them into one immutable snapshot.

mod sql;

pub use sql::{COLUMNS_SQL, FINGERPRINT_SQL, NODES_SQL, PARTITIONS_SQL, PLACEMENTS_SQL, PLAIN_FINGERPRINT_SQL, RELATIONS_SQL, SHARDS_SQL};

use crate::error::CatalogError;
use serde::Serialize;

/// Everything `Topology::build` needs. `columns` may be empty (then INSERTs without a column list
/// into Citus tables and unqualified columns in multi-table queries are reported as unknown).
#[derive(Debug, Clone, Default)]
pub struct CatalogRows {
    pub partitions: Vec<PartitionRow>,
    pub shards: Vec<ShardRow>,
    pub placements: Vec<PlacementRow>,
    pub nodes: Vec<NodeRow>,
    pub relations: Vec<RelationRow>,
    pub columns: Vec<ColumnRow>,
}

/// `pg_dist_partition.partmethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartMethod {
    Hash,
    Range,
    Append,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRow {
    pub schema: String,
    pub table: String,
    pub method: PartMethod,
    pub dist_column: Option<String>,
    pub dist_type: Option<u32>,
    pub colocation_id: u32,
    /// `repmodel`: 's' streaming, 't' two-phase (reference tables), 'c' coordinator (old).
    pub repmodel: char,
    pub collation: Option<u32>,
    pub collation_deterministic: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub schema: String,
    pub table: String,
    pub shard_id: i64,
    pub min_value: Option<String>,
    pub max_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlacementRow {
    pub placement_id: i64,
    pub shard_id: i64,
    pub shard_state: i32,
    pub group_id: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub node_id: i32,
    pub group_id: i32,
    pub host: String,
    pub port: u16,
    pub active: bool,
    pub role: String,
    pub cluster: String,
    pub should_have_shards: bool,
    /// `hasmetadata`: the node holds Citus's metadata and can plan distributed queries.
    pub has_metadata: bool,
    /// `metadatasynced` (nullable; NULL reads as false): that metadata is current.
    pub metadata_synced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationRow {
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`: r table, p partitioned table, v view, m materialized view, f foreign table.
    pub relkind: char,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRow {
    pub schema: String,
    pub table: String,
    pub attnum: i16,
    pub name: String,
    pub type_oid: u32,
    pub has_default: bool,
    /// int2/int4 column whose default draws from a sequence (`nextval(…)` default or identity):
    /// Citus refuses to evaluate it on a worker.
    pub int_sequence_default: bool,
}

/// Column access for one text row.
struct Cols<'a> {
    row: &'static str,
    cols: &'a [Option<&'a str>],
}

impl<'a> Cols<'a> {
    fn new(row: &'static str, cols: &'a [Option<&'a str>], expected: usize) -> Result<Self, CatalogError> {
        if cols.len() < expected {
            return Err(CatalogError::MissingColumns { row, expected, got: cols.len() });
        }
        Ok(Cols { row, cols })
    }
    fn opt(&self, i: usize) -> Option<&'a str> {
        self.cols.get(i).copied().flatten()
    }
    fn text(&self, i: usize, column: &'static str) -> Result<String, CatalogError> {
        self.opt(i).map(str::to_string).ok_or(CatalogError::Null { row: self.row, column })
    }
    fn parse<T: std::str::FromStr>(&self, i: usize, column: &'static str) -> Result<T, CatalogError> {
        let v = self.opt(i).ok_or(CatalogError::Null { row: self.row, column })?;
        v.trim().parse().map_err(|_| CatalogError::BadValue { row: self.row, column, value: v.to_string() })
    }
    fn opt_parse<T: std::str::FromStr>(&self, i: usize, column: &'static str) -> Result<Option<T>, CatalogError> {
        match self.opt(i) {
            None | Some("") => Ok(None),
            Some(_) => self.parse(i, column).map(Some),
        }
    }
    fn boolean(&self, i: usize, column: &'static str) -> Result<bool, CatalogError> {
        match self.opt(i) {
            Some("t" | "true") => Ok(true),
            Some("f" | "false") => Ok(false),
            Some(v) => Err(CatalogError::BadValue { row: self.row, column, value: v.to_string() }),
            None => Err(CatalogError::Null { row: self.row, column }),
        }
    }
    fn ch(&self, i: usize, column: &'static str) -> Result<char, CatalogError> {
        let v = self.text(i, column)?;
        v.chars().next().ok_or(CatalogError::BadValue { row: self.row, column, value: v.clone() })
    }
}

impl PartitionRow {
    /// Columns in `PARTITIONS_SQL` order.
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_dist_partition", cols, 9)?;
        let method = match c.ch(2, "partmethod")? {
            'h' => PartMethod::Hash,
            'r' => PartMethod::Range,
            'a' => PartMethod::Append,
            'n' => PartMethod::None,
            other => return Err(CatalogError::BadValue { row: c.row, column: "partmethod", value: other.to_string() }),
        };
        Ok(PartitionRow {
            schema: c.text(0, "schema")?,
            table: c.text(1, "table")?,
            method,
            dist_column: c.opt(3).filter(|s| !s.is_empty()).map(str::to_string),
            dist_type: c.opt_parse(4, "dist_type")?,
            colocation_id: c.parse(5, "colocationid")?,
            repmodel: c.ch(6, "repmodel")?,
            collation: c.opt_parse(7, "collation")?,
            collation_deterministic: match c.opt(8) {
                None | Some("") => None,
                Some(_) => Some(c.boolean(8, "collisdeterministic")?),
            },
        })
    }
}

impl ShardRow {
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_dist_shard", cols, 5)?;
        Ok(ShardRow {
            schema: c.text(0, "schema")?,
            table: c.text(1, "table")?,
            shard_id: c.parse(2, "shardid")?,
            min_value: c.opt(3).map(str::to_string),
            max_value: c.opt(4).map(str::to_string),
        })
    }
}

impl PlacementRow {
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_dist_placement", cols, 4)?;
        Ok(PlacementRow {
            placement_id: c.parse(0, "placementid")?,
            shard_id: c.parse(1, "shardid")?,
            shard_state: c.parse(2, "shardstate")?,
            group_id: c.parse(3, "groupid")?,
        })
    }
}

impl NodeRow {
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_dist_node", cols, 10)?;
        Ok(NodeRow {
            node_id: c.parse(0, "nodeid")?,
            group_id: c.parse(1, "groupid")?,
            host: c.text(2, "nodename")?,
            port: c.parse(3, "nodeport")?,
            active: c.boolean(4, "isactive")?,
            role: c.text(5, "noderole")?,
            cluster: c.text(6, "nodecluster")?,
            should_have_shards: c.boolean(7, "shouldhaveshards")?,
            has_metadata: c.boolean(8, "hasmetadata")?,
            metadata_synced: c.opt(9).is_some() && c.boolean(9, "metadatasynced")?,
        })
    }
}

impl RelationRow {
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_class", cols, 3)?;
        Ok(RelationRow { schema: c.text(0, "nspname")?, name: c.text(1, "relname")?, relkind: c.ch(2, "relkind")? })
    }
}

impl ColumnRow {
    pub fn from_text(cols: &[Option<&str>]) -> Result<Self, CatalogError> {
        let c = Cols::new("pg_attribute", cols, 6)?;
        Ok(ColumnRow {
            schema: c.text(0, "nspname")?,
            table: c.text(1, "relname")?,
            attnum: c.parse(2, "attnum")?,
            name: c.text(3, "attname")?,
            type_oid: c.parse(4, "atttypid")?,
            has_default: c.boolean(5, "has_default")?,
            // Absent from the older 6-column shape: read as false.
            int_sequence_default: c.opt(6).is_some() && c.boolean(6, "int_sequence_default")?,
        })
    }
}

/// A numeric field of a `partkey` node string, e.g. `partkey_field(pk, "varattno")`.
pub fn partkey_field(partkey: &str, field: &str) -> Option<i64> {
    let needle = format!(":{field} ");
    let start = partkey.find(&needle)? + needle.len();
    let rest = partkey.get(start..)?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a panic here is a failed test, not a crashed proxy
    use super::*;

    fn node(synced: Option<&str>) -> Result<NodeRow, CatalogError> {
        NodeRow::from_text(&[
            Some("2"),
            Some("1"),
            Some("10.0.0.2"),
            Some("5432"),
            Some("t"),
            Some("primary"),
            Some("default"),
            Some("t"),
            Some("t"),
            synced,
        ])
    }

    #[test]
    fn node_rows_carry_the_metadata_flags() {
        let n = node(Some("t")).expect("node row");
        assert!(n.has_metadata && n.metadata_synced);
        assert_eq!((n.node_id, n.group_id, n.port), (2, 1, 5432));
        assert!(!node(Some("f")).expect("node row").metadata_synced);
        assert!(!node(None).expect("NULL metadatasynced").metadata_synced, "NULL reads as false");
        let no_metadata = NodeRow::from_text(&[
            Some("1"),
            Some("0"),
            Some("c"),
            Some("5432"),
            Some("t"),
            Some("primary"),
            Some("default"),
            Some("f"),
            Some("f"),
            Some("f"),
        ])
        .expect("node row");
        assert!(!no_metadata.has_metadata);
        assert!(matches!(node(Some("maybe")), Err(CatalogError::BadValue { column: "metadatasynced", .. })));
        // The 8-column shape of NODES_SQL before the flags is refused rather than read as "no metadata".
        let short = [Some("2"), Some("1"), Some("h"), Some("5432"), Some("t"), Some("primary"), Some("default"), Some("t")];
        assert!(matches!(NodeRow::from_text(&short), Err(CatalogError::MissingColumns { expected: 10, got: 8, .. })));
    }

    #[test]
    fn column_rows_with_six_or_seven_columns() {
        let six = [Some("public"), Some("tickets"), Some("1"), Some("ticket_id"), Some("23"), Some("t")];
        let c = ColumnRow::from_text(&six).expect("6-column row");
        assert!(c.has_default && !c.int_sequence_default, "the older shape reads as no int sequence default");
        let mut seven = six.to_vec();
        seven.push(Some("t"));
        assert!(ColumnRow::from_text(&seven).expect("7-column row").int_sequence_default);
        seven[6] = Some("f");
        assert!(!ColumnRow::from_text(&seven).expect("7-column row").int_sequence_default);
        seven[6] = Some("x");
        assert!(ColumnRow::from_text(&seven).is_err());
        assert!(ColumnRow::from_text(&six[..5]).is_err());
    }
}
