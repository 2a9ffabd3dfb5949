//! `Topology::build`: join partitions, shards, placements (on group id) and nodes.

use super::{CitusTable, Column, DistColumn, Node, Shard, TableKind, Topology};
use crate::catalog::{CatalogRows, PartMethod};
use crate::error::CatalogError;
use crate::types::PgType;
use ahash::AHashMap;

const HASH_TOKEN_COUNT: i64 = 1 << 32;

fn kind_of(method: PartMethod, repmodel: char, colocation_id: u32) -> TableKind {
    match method {
        PartMethod::Hash => TableKind::Hash,
        PartMethod::Range => TableKind::Range,
        PartMethod::Append => TableKind::Append,
        PartMethod::None if repmodel == 't' => TableKind::Reference,
        PartMethod::None if colocation_id == 0 => TableKind::CitusLocal,
        PartMethod::None => TableKind::SingleShard,
    }
}

fn parse_i32(v: &Option<String>, what: &str, shard: i64) -> Result<i32, CatalogError> {
    v.as_deref()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| CatalogError::Inconsistent(format!("hash shard {shard} has a bad {what} value {v:?}")))
}

impl Topology {
    pub fn build(rows: CatalogRows) -> Result<Topology, CatalogError> {
        let mut topo = Topology::default();
        for n in &rows.nodes {
            topo.nodes.push(Node {
                node_id: n.node_id,
                group_id: n.group_id,
                host: n.host.clone(),
                port: n.port,
                active: n.active,
                role: n.role.clone(),
                should_have_shards: n.should_have_shards,
                has_metadata: n.has_metadata,
                metadata_synced: n.metadata_synced,
                addr: format!("{}:{}", n.host, n.port).into(),
            });
        }
        let mut query_nodes: Vec<usize> = (0..topo.nodes.len()).filter(|i| topo.nodes.get(*i).is_some_and(Node::plans_queries)).collect();
        query_nodes.sort_by_key(|i| topo.nodes.get(*i).map(|n| n.node_id));
        topo.query_nodes = query_nodes;
        // Placements join nodes on group id; only active primaries of the default cluster serve.
        let mut group_nodes: AHashMap<i32, Vec<usize>> = AHashMap::new();
        for (i, n) in rows.nodes.iter().enumerate() {
            if n.active && n.role == "primary" && n.cluster == "default" {
                group_nodes.entry(n.group_id).or_default().push(i);
            }
        }
        let mut shard_nodes: AHashMap<i64, Vec<usize>> = AHashMap::new();
        for p in &rows.placements {
            // shardstate 1 = active; 4 = to be deleted (old copies after a move).
            if p.shard_state != 1 {
                continue;
            }
            let nodes = shard_nodes.entry(p.shard_id).or_default();
            for n in group_nodes.get(&p.group_id).into_iter().flatten() {
                if !nodes.contains(n) {
                    nodes.push(*n);
                }
            }
        }
        let mut columns: AHashMap<(String, String), Vec<Column>> = AHashMap::new();
        for c in &rows.columns {
            columns.entry((c.schema.clone(), c.table.clone())).or_default().push(Column {
                name: c.name.clone(),
                ty: PgType::from_oid(c.type_oid),
                has_default: c.has_default,
                int_sequence_default: c.int_sequence_default,
            });
        }
        for p in &rows.partitions {
            let key = (p.schema.clone(), p.table.clone());
            let dist_column = match (&p.dist_column, p.dist_type) {
                (Some(name), Some(ty)) => {
                    Some(DistColumn { name: name.clone(), ty: PgType::from_oid(ty), hashable: p.collation_deterministic.unwrap_or(true) })
                }
                _ => None,
            };
            let kind = kind_of(p.method, p.repmodel, p.colocation_id);
            if matches!(kind, TableKind::Hash | TableKind::Range | TableKind::Append) && dist_column.is_none() {
                topo.warnings.push(format!("{}.{}: distribution column not found", p.schema, p.table));
            }
            let id = topo.tables.len();
            topo.tables.push(CitusTable {
                schema: p.schema.clone(),
                name: p.table.clone(),
                kind,
                colocation_id: p.colocation_id,
                dist_column,
                shards: Vec::new(),
                columns: columns.remove(&key).unwrap_or_default(),
                uniform: false,
            });
            topo.by_name.entry(key.0).or_default().insert(key.1, id);
        }
        for s in &rows.shards {
            let Some(tid) = topo.table_id(&s.schema, &s.table) else {
                topo.warnings.push(format!("shard {} of unknown table {}.{}", s.shard_id, s.schema, s.table));
                continue;
            };
            let Some(table) = topo.tables.get_mut(tid) else { continue };
            let nodes = shard_nodes.remove(&s.shard_id).unwrap_or_default();
            if nodes.is_empty() {
                topo.warnings.push(format!("shard {} has no active placement on an active primary", s.shard_id));
            }
            let mut shard = Shard { id: s.shard_id, hash_range: None, int_range: None, index: 0, nodes };
            match table.kind {
                TableKind::Hash => {
                    shard.hash_range = Some((parse_i32(&s.min_value, "min", s.shard_id)?, parse_i32(&s.max_value, "max", s.shard_id)?));
                }
                TableKind::Range | TableKind::Append => {
                    let int = |v: &Option<String>| v.as_deref().and_then(|x| x.trim().parse::<i64>().ok());
                    if table.dist_column.as_ref().is_some_and(|d| d.ty.is_integer()) {
                        shard.int_range = Some((int(&s.min_value), int(&s.max_value)));
                    }
                }
                _ => {}
            }
            table.shards.push(shard);
        }
        for (tid, table) in topo.tables.iter_mut().enumerate() {
            table.shards.sort_by_key(|s| (s.hash_range.map(|r| r.0), s.int_range.and_then(|r| r.0), s.id));
            for (i, s) in table.shards.iter_mut().enumerate() {
                s.index = i;
                topo.shard_index.insert(s.id, (tid, i));
            }
            table.uniform = is_uniform(&table.shards);
            if table.kind == TableKind::Hash && !covers_hash_space(&table.shards) {
                topo.warnings
                    .push(format!("{}.{}: shard ranges leave gaps or overlap; lookups outside them are unknown", table.schema, table.name));
            }
        }
        for r in &rows.relations {
            topo.relations.entry(r.schema.clone()).or_default().insert(r.name.clone(), r.relkind);
        }
        Ok(topo)
    }
}

/// Ranges exactly as `CreateShardsWithRoundRobinPolicy` makes them (last max forced to INT32_MAX).
fn is_uniform(shards: &[Shard]) -> bool {
    let n = shards.len() as i64;
    if n == 0 {
        return false;
    }
    let inc = HASH_TOKEN_COUNT / n;
    shards.iter().enumerate().all(|(i, s)| {
        let min = i64::from(i32::MIN) + i as i64 * inc;
        let max = if i as i64 == n - 1 { i64::from(i32::MAX) } else { min + inc - 1 };
        s.hash_range.is_some_and(|(lo, hi)| i64::from(lo) == min && i64::from(hi) == max)
    })
}

fn covers_hash_space(shards: &[Shard]) -> bool {
    let mut next = i64::from(i32::MIN);
    for s in shards {
        match s.hash_range {
            Some((lo, hi)) if i64::from(lo) == next && hi >= lo => next = i64::from(hi) + 1,
            _ => return false,
        }
    }
    next == i64::from(i32::MAX) + 1
}
