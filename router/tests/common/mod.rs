//! Test fixture: the real Citus catalog dump in test-support/citus/metadata turned into the
//! text rows the proxy would fetch with the catalog queries, then into a Topology.
#![allow(dead_code)]

use citus_proxy_router::catalog::{partkey_field, CatalogRows, ColumnRow, NodeRow, PartitionRow, PlacementRow, RelationRow, ShardRow};
use citus_proxy_router::Topology;
use std::collections::HashMap;

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-support/citus");

pub fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Rows of a TSV with a header: field name → value (empty = NULL).
pub fn tsv(name: &str) -> Vec<HashMap<String, Option<String>>> {
    let text = read(name);
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split('\t').map(str::to_string).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            header.iter().enumerate().map(|(i, h)| (h.clone(), fields.get(i).filter(|v| !v.is_empty()).map(|v| v.to_string()))).collect()
        })
        .collect()
}

fn get<'a>(r: &'a HashMap<String, Option<String>>, k: &str) -> Option<&'a str> {
    r.get(k).and_then(|v| v.as_deref())
}

/// Table name → CREATE TABLE body from the demo schema (for relations and column defaults).
fn schema_tables() -> Vec<(String, String)> {
    let text = read("demo-schema.sql");
    let mut out = Vec::new();
    for part in text.split("CREATE TABLE ").skip(1) {
        let name = part.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("").to_string();
        let body = part.split(';').next().unwrap_or("");
        let body = body.split_once('(').map_or(body, |(_, b)| b).to_string();
        out.push((name, body));
    }
    out
}

pub fn catalog_rows() -> CatalogRows {
    let columns = tsv("metadata/dist_table_columns.tsv");
    let tables = schema_tables();
    let definition = |table: &str, col: &str| -> Option<String> {
        let (_, body) = tables.iter().find(|(t, _)| t == table)?;
        body.split(',').map(|def| def.trim().trim_start_matches('(').to_lowercase()).find(|def| def.starts_with(col))
    };
    let has_default = |table: &str, col: &str| definition(table, col).is_some_and(|d| d.contains("serial") || d.contains("default"));
    // `serial` / `smallserial` (int4 / int2 with a sequence default); `bigserial` is int8.
    let int_sequence_default = |table: &str, col: &str| {
        definition(table, col)
            .is_some_and(|d| d.contains("serial") && !d.contains("bigserial") || d.contains("identity") && !d.contains("bigint"))
    };
    let mut rows = CatalogRows::default();
    for r in tsv("metadata/pg_dist_partition.tsv") {
        let table = get(&r, "logicalrelid").unwrap_or_default();
        let partkey = get(&r, "partkey");
        let attnum = partkey.and_then(|p| partkey_field(p, "varattno"));
        let col = attnum
            .and_then(|a| columns.iter().find(|c| get(c, "relname") == Some(table) && get(c, "attnum") == Some(a.to_string().as_str())));
        let collation = partkey.and_then(|p| partkey_field(p, "varcollid")).map(|c| c.to_string());
        let cols = [
            Some("public".to_string()),
            Some(table.to_string()),
            get(&r, "partmethod").map(str::to_string),
            col.and_then(|c| get(c, "attname")).map(str::to_string),
            col.and_then(|c| get(c, "atttypid")).map(str::to_string),
            get(&r, "colocationid").map(str::to_string),
            get(&r, "repmodel").map(str::to_string),
            collation.clone(),
            collation.map(|_| "t".to_string()),
        ];
        let refs: Vec<Option<&str>> = cols.iter().map(|c| c.as_deref()).collect();
        rows.partitions.push(PartitionRow::from_text(&refs).expect("partition row"));
    }
    for r in tsv("metadata/pg_dist_shard.tsv") {
        let refs = [Some("public"), get(&r, "logicalrelid"), get(&r, "shardid"), get(&r, "shardminvalue"), get(&r, "shardmaxvalue")];
        rows.shards.push(ShardRow::from_text(&refs).expect("shard row"));
    }
    for r in tsv("metadata/pg_dist_placement.tsv") {
        let refs = [get(&r, "placementid"), get(&r, "shardid"), get(&r, "shardstate"), get(&r, "groupid")];
        rows.placements.push(PlacementRow::from_text(&refs).expect("placement row"));
    }
    for r in tsv("metadata/pg_dist_node.tsv") {
        let refs = [
            get(&r, "nodeid"),
            get(&r, "groupid"),
            get(&r, "nodename"),
            get(&r, "nodeport"),
            get(&r, "isactive"),
            get(&r, "noderole"),
            get(&r, "nodecluster"),
            get(&r, "shouldhaveshards"),
            get(&r, "hasmetadata"),
            get(&r, "metadatasynced"),
        ];
        rows.nodes.push(NodeRow::from_text(&refs).expect("node row"));
    }
    for c in &columns {
        let table = get(c, "relname").unwrap_or_default();
        let name = get(c, "attname").unwrap_or_default();
        let def = if has_default(table, name) { "t" } else { "f" };
        let int_seq = if int_sequence_default(table, name) { "t" } else { "f" };
        let refs = [Some("public"), Some(table), get(c, "attnum"), Some(name), get(c, "atttypid"), Some(def), Some(int_seq)];
        rows.columns.push(ColumnRow::from_text(&refs).expect("column row"));
    }
    for (t, _) in &tables {
        rows.relations.push(RelationRow::from_text(&[Some("public"), Some(t.as_str()), Some("r")]).expect("relation row"));
    }
    rows
}

pub fn topology() -> Topology {
    Topology::build(catalog_rows()).expect("topology")
}
