//! INSERT routing: each VALUES row by its distribution value; INSERT … SELECT by its SELECT when
//! Citus can push it down shard by shard.

use super::decide::{general, Outcome};
use super::prune::{hash_shard, qualified, shard_ref};
use super::restrict::Ctx;
use crate::analysis::model::{Dml, InsertSource, RowValue};
use crate::route::{Route, ShardRef};
use crate::topology::{CitusTable, Relation, Shard, TableKind, Topology};

enum RowShard<'t> {
    Known(&'t Shard),
    Unknown,
}

pub(crate) fn decide_insert(ctx: &Ctx<'_, '_>, topo: &Topology) -> Outcome {
    let Dml::Insert { target, columns, source } = &ctx.model.dml else { return Outcome::unknown("not an INSERT") };
    let t = match ctx.bound.rel(*target) {
        Some(Relation::Citus(id)) => match topo.table(id) {
            Some(t) => t,
            None => return Outcome::unknown("table vanished from the snapshot"),
        },
        Some(Relation::Local(_) | Relation::Catalog) => {
            let src = general(ctx, topo, Some(*target));
            return match src.route {
                Route::Coordinator | Route::Local { .. } => {
                    Outcome::new(Route::Local { shards: Vec::new() }, "INSERT into a plain PostgreSQL table")
                }
                // Citus runs the SELECT as a distributed query and inserts its rows on the
                // coordinator: the distributed work is the SELECT's.
                Route::SingleShard { .. } | Route::MultiShard { .. } | Route::Reference { .. } | Route::ZeroShard | Route::Error { .. } => {
                    Outcome {
                        route: src.route,
                        reason: format!("INSERT into a local table, its SELECT pulled to the coordinator: {}", src.reason),
                    }
                }
                _ => Outcome::unknown(format!("INSERT into a local table from Citus tables: {}", src.reason)),
            };
        }
        _ => return Outcome::unknown("INSERT target is not in the metadata snapshot"),
    };
    let all_shards = || t.shards.iter().map(|s| shard_ref(topo, t, s)).collect::<Vec<_>>();
    match t.kind {
        TableKind::Reference => {
            let nodes = t.only_shard().map(|s| super::prune::node_addrs(topo, s)).unwrap_or_default();
            return Outcome::new(Route::Reference { shards: all_shards(), nodes }, format!("INSERT into reference table {}", qualified(t)));
        }
        TableKind::CitusLocal => return Outcome::new(Route::Local { shards: all_shards() }, "INSERT into a Citus local table"),
        TableKind::SingleShard => {
            let node = t.only_shard().and_then(|s| s.nodes.first()).and_then(|n| topo.node(*n)).map(|n| n.addr().to_string());
            return Outcome::new(Route::SingleShard { shards: all_shards(), node }, "table distributed without a key: one shard");
        }
        _ => {}
    }
    let Some(dc) = t.dist_column.as_ref() else { return Outcome::unknown("distribution column unknown") };
    let pos = match columns {
        Some(list) => list.iter().position(|c| **c == *dc.name),
        None if t.columns.is_empty() => return Outcome::unknown("INSERT without a column list needs the table's columns"),
        None => t.columns.iter().position(|c| c.name == dc.name),
    };
    let has_default = t.columns.iter().find(|c| c.name == dc.name).map(|c| c.has_default);
    match source {
        InsertSource::Values(rows) => values(ctx, topo, t, pos, has_default, rows),
        InsertSource::DefaultValues => match has_default {
            Some(false) => Outcome::error("cannot perform an INSERT with NULL in the partition column"),
            _ => Outcome::unknown("distribution value comes from a DEFAULT evaluated at run time"),
        },
        InsertSource::Select(outputs) => insert_select(ctx, topo, t, pos, outputs),
    }
}

fn values(
    ctx: &Ctx<'_, '_>,
    topo: &Topology,
    t: &CitusTable,
    pos: Option<usize>,
    has_default: Option<bool>,
    rows: &[Vec<RowValue>],
) -> Outcome {
    let Some(dc) = t.dist_column.as_ref() else { return Outcome::unknown("distribution column unknown") };
    let Some(pos) = pos else {
        return match has_default {
            Some(false) => Outcome::error("cannot perform an INSERT without a partition column value"),
            Some(true) if rows.len() == 1 => single_unknown(t, "distribution value comes from its DEFAULT".into()),
            _ => Outcome::unknown("distribution value comes from a DEFAULT evaluated at run time"),
        };
    };
    let mut placed = Vec::with_capacity(rows.len());
    let mut notes = Vec::new();
    for row in rows {
        let shard = match row.get(pos).unwrap_or(&RowValue::Default) {
            RowValue::Value(v) => match ctx.vals.key_value(v, dc.ty) {
                Ok(None) => return Outcome::error("cannot perform an INSERT with NULL in the partition column"),
                Ok(Some(d)) => match (t.kind, hash_shard(t, &d)) {
                    (TableKind::Hash, (Some(s), Some(h))) => {
                        if ctx.vals.explain && notes.len() < 8 {
                            notes.push(format!("{}.{} = {} → hash {h} → shard {}", qualified(t), dc.name, d.display(), s.id));
                        }
                        RowShard::Known(s)
                    }
                    _ => RowShard::Unknown,
                },
                Err(e) => return Outcome::unknown(format!("distribution value of a row: {e}")),
            },
            RowValue::Default if has_default == Some(false) => {
                return Outcome::error("cannot perform an INSERT with NULL in the partition column")
            }
            RowValue::Default | RowValue::Computed => RowShard::Unknown,
        };
        placed.push(shard);
    }
    let mut shards: Vec<&Shard> = Vec::new();
    let mut unknown = false;
    for p in &placed {
        match p {
            RowShard::Known(s) if !shards.iter().any(|x| x.id == s.id) => shards.push(s),
            RowShard::Known(_) => {}
            RowShard::Unknown => unknown = true,
        }
    }
    let reason = notes.join("; ");
    match (unknown, shards.as_slice()) {
        (true, _) if rows.len() == 1 => single_unknown(t, "distribution value evaluated at run time".into()),
        (true, _) => Outcome::unknown("some rows' distribution values are only known at run time"),
        (false, [s]) => {
            let node = s.nodes.first().and_then(|n| topo.node(*n)).map(|n| n.addr().to_string());
            Outcome::new(Route::SingleShard { shards: vec![shard_ref(topo, t, s)], node }, reason)
        }
        (false, []) => Outcome::unknown("INSERT without rows"),
        (false, many) => {
            let refs: Vec<ShardRef> = many.iter().map(|s| shard_ref(topo, t, s)).collect();
            let mut nodes: Vec<String> = refs.iter().flat_map(|r| r.nodes.clone()).collect();
            nodes.sort();
            nodes.dedup();
            Outcome::new(
                Route::MultiShard { tasks: Some(refs.len()), shards: refs, nodes },
                format!("{} rows over {} shards", rows.len(), many.len()),
            )
        }
    }
}

fn single_unknown(t: &CitusTable, why: String) -> Outcome {
    let shards = vec![ShardRef { table: qualified(t), shard_id: None, nodes: Vec::new() }];
    Outcome::new(Route::SingleShard { shards, node: None }, format!("{why}: one shard, which one is unknown"))
}

/// Co-located pushdown: the target's distribution column is fed by a co-located source's key.
fn insert_select(ctx: &Ctx<'_, '_>, topo: &Topology, t: &CitusTable, pos: Option<usize>, outputs: &[Option<usize>]) -> Outcome {
    let Dml::Insert { target, .. } = &ctx.model.dml else { return Outcome::unknown("not an INSERT") };
    let src = general(ctx, topo, Some(*target));
    match src.route {
        Route::SingleShard { shards, node } => {
            let fed = pos.and_then(|p| outputs.get(p).copied().flatten()).and_then(|c| ctx.bound.col(c));
            let source_key = fed.and_then(|(rel, col)| match ctx.bound.rel(rel) {
                Some(Relation::Citus(id)) => {
                    topo.table(id).filter(|s| s.colocation_id == t.colocation_id && s.dist_column.as_ref().is_some_and(|d| d.name == col))
                }
                _ => None,
            });
            let (Some(source), Some(first)) = (source_key, shards.first()) else {
                return pulled(topo, t, &src.reason);
            };
            let index = first.shard_id.and_then(|id| topo.shard(id)).filter(|(st, _)| st.name == source.name).map(|(_, s)| s.index);
            let Some(target_shard) = index.and_then(|i| t.shards.get(i)) else {
                return Outcome::unknown("INSERT … SELECT: target shard not found");
            };
            let mut all = shards;
            if !all.iter().any(|s| s.shard_id == Some(target_shard.id)) {
                all.insert(0, shard_ref(topo, t, target_shard));
            }
            Outcome::new(Route::SingleShard { shards: all, node }, format!("INSERT … SELECT pushed down: {}", src.reason))
        }
        Route::MultiShard { .. } => Outcome { route: src.route, reason: format!("INSERT … SELECT over many shards: {}", src.reason) },
        Route::Error { .. } => src,
        Route::Local { .. } | Route::Coordinator | Route::Reference { .. } => pulled(topo, t, &src.reason),
        _ => Outcome::unknown(format!("INSERT … SELECT: {}", src.reason)),
    }
}

/// INSERT … SELECT that Citus pulls to the coordinator: the SELECT runs there and its rows are
/// sent to the target's shards by their values, which are known only at run time.
fn pulled(topo: &Topology, t: &CitusTable, source: &str) -> Outcome {
    let shards: Vec<ShardRef> = t.shards.iter().map(|s| shard_ref(topo, t, s)).collect();
    let mut nodes: Vec<String> = shards.iter().flat_map(|r| r.nodes.iter().cloned()).collect();
    nodes.sort();
    nodes.dedup();
    let why = if source.is_empty() { String::new() } else { format!(" (SELECT: {source})") };
    Outcome::new(
        Route::MultiShard { shards, tasks: None, nodes },
        format!("INSERT … SELECT pulled to the coordinator: rows go to the shards of {} their values hash to{why}", qualified(t)),
    )
}
