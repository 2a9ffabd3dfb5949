//! The route of one statement: bind the model to the topology, prune every distributed relation,
//! then apply Citus's planner outcomes (router → single task; else fan-out, or the errors it
//! raises for joins it cannot push down).

use super::bind_cache::bound;
use super::insert::decide_insert;
use super::prune::{node_addrs, prune, qualified, shard_ref, Pruned};
use super::restrict::{region_false, Classes, Ctx, KeySet};
use super::values::Bindings;
use crate::analysis::model::{Dml, RelId, RelSource, SetValue};
use crate::analysis::{StatementInfo, StatementKind};
use crate::route::{Route, ShardRef};
use crate::topology::{CitusTable, Relation, Shard, TableKind, Topology};

pub(crate) struct Outcome {
    pub route: Route,
    pub reason: String,
}

impl Outcome {
    pub fn new(route: Route, reason: impl Into<String>) -> Self {
        Outcome { route, reason: reason.into() }
    }
    pub fn unknown(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Outcome { route: Route::Unknown { reason: reason.clone() }, reason }
    }
    pub fn error(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Outcome { route: Route::Error { reason: reason.clone() }, reason }
    }
}

pub(crate) fn decide(info: &StatementInfo, topo: &Topology, search_path: &[&str], vals: Bindings<'_>) -> Outcome {
    let m = &info.model;
    match &info.kind {
        StatementKind::Unparsed { .. } => {
            return Outcome::unknown(m.giveup.clone().unwrap_or_else(|| "not parsed".into()));
        }
        StatementKind::Read | StatementKind::CitusMetadataCall { .. } => {}
        StatementKind::Write if m.dml != Dml::Select => {}
        _ if m.giveup.is_some() => return Outcome::unknown(m.giveup.clone().unwrap_or_default()),
        other => return Outcome::new(Route::Utility, format!("{} statement: not planned by Citus", other.as_str())),
    }
    if let Some(g) = &m.giveup {
        return Outcome::unknown(g.clone());
    }
    let bound = bound(info, topo, search_path);
    for (i, r) in bound.rels().iter().enumerate() {
        let name = || match m.rels.get(i).map(|r| &r.source) {
            Some(RelSource::Base { schema: Some(s), name }) => format!("{s}.{name}"),
            Some(RelSource::Base { name, .. }) => name.to_string(),
            _ => "?".into(),
        };
        match r {
            Some(Relation::Unknown) => return Outcome::unknown(format!("relation {} is not in the metadata snapshot", name())),
            Some(Relation::Temp) => return Outcome::unknown(format!("{} is a temporary table", name())),
            Some(Relation::View) => return Outcome::unknown(format!("{} is a view; its definition is not analysed", name())),
            _ => {}
        }
    }
    let ctx = Ctx { model: m, bound: &bound, vals };
    match &m.dml {
        Dml::Insert { .. } => decide_insert(&ctx, topo),
        _ => general(&ctx, topo, None),
    }
}

pub(crate) struct DistRel<'t> {
    pub rel: RelId,
    pub table: &'t CitusTable,
    pub pruned: Pruned<'t>,
    pub keyset: KeySet,
}

fn key_restriction(ctx: &Ctx<'_, '_>, classes: &Classes<'_>, rel: RelId, t: &CitusTable) -> KeySet {
    let region = ctx.model.rels.get(rel).map_or(0, |r| r.region);
    if region_false(ctx, region) {
        return KeySet::Values(Vec::new());
    }
    let Some(dc) = t.dist_column.as_ref().filter(|_| t.kind != TableKind::SingleShard) else { return KeySet::All };
    let mut ks = ctx.own(rel, &dc.name, dc.ty);
    for v in classes.constants((rel, &dc.name)) {
        let one = match ctx.vals.key_value(v, dc.ty) {
            Ok(None) => KeySet::Values(Vec::new()),
            Ok(Some(d)) => KeySet::Values(vec![d]),
            Err(_) => KeySet::All,
        };
        ks = ks.intersect(one);
    }
    ks
}

fn reference_nodes(topo: &Topology, s: &Shard, read: bool) -> Vec<String> {
    // Reads of a reference table go to one placement, the coordinator's when it has one.
    if read {
        if let Some(n) = s.nodes.iter().filter_map(|n| topo.node(*n)).find(|n| n.group_id == 0) {
            return vec![n.addr().to_string()];
        }
        return node_addrs(topo, s).into_iter().take(1).collect();
    }
    node_addrs(topo, s)
}

/// SELECT / UPDATE / DELETE (and the SELECT of INSERT … SELECT, with the target excluded).
pub(crate) fn general(ctx: &Ctx<'_, '_>, topo: &Topology, exclude: Option<RelId>) -> Outcome {
    let m = ctx.model;
    let citus = |rid: RelId, rel: &Option<Relation>| match rel {
        Some(Relation::Citus(id)) if Some(rid) != exclude => topo.table(*id).map(|t| (rid, t)),
        _ => None,
    };
    // Distributed tables are only counted here and walked again below: a point query then
    // allocates one list instead of two.
    let (mut dist, mut refs, mut citus_local) = (0usize, Vec::new(), Vec::new());
    let (mut has_local, mut has_catalog) = (false, false);
    for (rid, rel) in ctx.bound.rels().iter().enumerate() {
        if Some(rid) == exclude {
            continue;
        }
        match (rel, citus(rid, rel)) {
            (_, Some((rid, t))) => match t.kind {
                TableKind::Reference => refs.push((rid, t)),
                TableKind::CitusLocal => citus_local.push((rid, t)),
                _ => dist += 1,
            },
            (Some(Relation::Local(_)), _) => has_local = true,
            (Some(Relation::Catalog), _) => has_catalog = true,
            _ => {}
        }
    }
    let read = matches!(m.dml, Dml::Select);
    if dist == 0 && refs.is_empty() && citus_local.is_empty() {
        return if has_local {
            Outcome::new(Route::Local { shards: Vec::new() }, "only plain PostgreSQL tables on the coordinator")
        } else if has_catalog {
            Outcome::new(Route::Coordinator, "only catalog relations")
        } else {
            Outcome::new(Route::Coordinator, "no table: evaluated on the coordinator")
        };
    }
    if has_catalog {
        return Outcome::unknown("joins Citus tables with catalog relations");
    }
    let ref_shards: Vec<ShardRef> = refs.iter().filter_map(|(_, t)| t.only_shard().map(|s| shard_ref(topo, t, s))).collect();
    if !citus_local.is_empty() {
        if dist > 0 {
            return Outcome::unknown("joins a Citus local table with distributed tables");
        }
        let mut shards: Vec<ShardRef> = citus_local.iter().filter_map(|(_, t)| t.only_shard().map(|s| shard_ref(topo, t, s))).collect();
        shards.extend(ref_shards);
        return Outcome::new(Route::Local { shards }, "Citus local tables live on the coordinator");
    }
    if dist == 0 && has_local {
        return reference_with_local(topo, &refs, ref_shards);
    }
    if dist == 0 {
        let mut nodes = Vec::new();
        for (_, t) in &refs {
            for s in &t.shards {
                for n in reference_nodes(topo, s, read) {
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
            }
        }
        let names: Vec<String> = refs.iter().map(|(_, t)| qualified(t)).collect();
        return Outcome::new(Route::Reference { shards: ref_shards, nodes }, format!("only reference tables ({})", names.join(", ")));
    }
    let classes = Classes::build(ctx);
    let rels: Vec<DistRel<'_>> = ctx
        .bound
        .rels()
        .iter()
        .enumerate()
        .filter_map(|(rid, rel)| citus(rid, rel))
        .filter(|(_, t)| !matches!(t.kind, TableKind::Reference | TableKind::CitusLocal))
        .map(|(rid, t)| {
            let keyset = key_restriction(ctx, &classes, rid, t);
            DistRel { rel: rid, table: t, pruned: prune(topo, t, &keyset, ctx.vals.explain), keyset }
        })
        .collect();
    let mut notes: Vec<String> = rels.iter().flat_map(|d| d.pruned.notes.iter().cloned()).collect();
    if has_local {
        // Citus plans the join recursively: the filtered distributed side (or the local table)
        // becomes a subplan; the shards touched are the distributed tables' own.
        notes.push("joined with local tables: planned recursively, the join of the subplan runs on the coordinator".into());
    }
    let reason = notes.join("; ");
    if let Dml::Update { target, sets } = &m.dml {
        if let Some(o) = key_update_error(ctx, &rels, *target, sets) {
            return o;
        }
    }
    if rels.iter().any(|d| d.pruned.unknown) {
        return match rels.as_slice() {
            [d] if matches!(&d.keyset, KeySet::Values(v) if v.len() == 1) => {
                let mut shards = vec![ShardRef { table: qualified(d.table), shard_id: None, nodes: Vec::new() }];
                shards.extend(ref_shards);
                Outcome::new(Route::SingleShard { shards, node: None }, format!("{reason} (one shard, which one is unknown)"))
            }
            _ => Outcome::unknown(format!("cannot place every value: {reason}")),
        };
    }
    if rels.iter().all(|d| d.pruned.shards.len() <= 1) {
        if let Some(o) = router(topo, &rels, ref_shards.clone(), &reason) {
            return o;
        }
    }
    if m.locking {
        return Outcome::error("could not run distributed query with FOR UPDATE/SHARE commands");
    }
    // With local tables in the join Citus first turns either side into a subplan
    // (citus.local_table_join_policy), so a join error is no longer certain.
    if !has_local {
        if let Some(e) = join_error(ctx, &classes, &rels) {
            return Outcome::error(e);
        }
    }
    multi(topo, &rels, ref_shards, reason)
}

/// Reference tables joined with plain tables: Citus's router planner accepts it only on a
/// placement local to the coordinator (group 0), where the one task then runs.
fn reference_with_local(topo: &Topology, refs: &[(RelId, &CitusTable)], ref_shards: Vec<ShardRef>) -> Outcome {
    let coordinator = refs.iter().try_fold(None::<String>, |found, (_, t)| {
        let s = t.only_shard()?;
        let n = s.nodes.iter().filter_map(|n| topo.node(*n)).find(|n| n.group_id == 0)?;
        Some(found.or_else(|| Some(n.addr().to_string())))
    });
    match coordinator.flatten() {
        Some(node) => Outcome::new(
            Route::Reference { shards: ref_shards, nodes: vec![node] },
            "reference tables joined with local tables: one task on the coordinator's placement",
        ),
        None => Outcome::unknown("reference tables joined with local tables, but the coordinator holds no placement of them"),
    }
}

/// Citus's router planner: every distributed relation on at most one shard, all co-located.
fn router(topo: &Topology, rels: &[DistRel<'_>], ref_shards: Vec<ShardRef>, reason: &str) -> Option<Outcome> {
    // Re-walked rather than collected: this runs on every point query.
    let present = || rels.iter().filter_map(|d| d.pruned.shards.first().map(|s| (d.table, *s)));
    let Some((t0, s0)) = present().next() else {
        return Some(if ref_shards.is_empty() {
            Outcome::new(Route::ZeroShard, format!("{reason} → one task on the coordinator touching no shard"))
        } else {
            Outcome::unknown("contradiction on the distributed tables joined with reference tables")
        });
    };
    if present().count() < rels.len() {
        return Some(Outcome::unknown("some distributed tables prune to no shard and others to one"));
    }
    let colocated = present().all(|(t, s)| t.colocation_id == t0.colocation_id && s.index == s0.index);
    if !colocated {
        let common = s0.nodes.iter().any(|n| present().all(|(_, s)| s.nodes.contains(n)));
        return common.then(|| Outcome::unknown("single shards of tables that are not co-located, on one node"));
    }
    let node = s0.nodes.first().and_then(|n| topo.node(*n)).map(|n| n.addr().to_string());
    let mut shards: Vec<ShardRef> = present().map(|(t, s)| shard_ref(topo, t, s)).collect();
    shards.dedup_by_key(|s| s.shard_id);
    shards.extend(ref_shards);
    Some(Outcome::new(Route::SingleShard { shards, node }, reason.to_string()))
}

fn multi(topo: &Topology, rels: &[DistRel<'_>], ref_shards: Vec<ShardRef>, reason: String) -> Outcome {
    let mut shards = Vec::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut indexes = Vec::new();
    for d in rels {
        for s in &d.pruned.shards {
            shards.push(shard_ref(topo, d.table, s));
            for n in node_addrs(topo, s) {
                if !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
            if !indexes.contains(&s.index) {
                indexes.push(s.index);
            }
        }
    }
    nodes.sort();
    let colocated = rels.windows(2).all(|w| matches!(w, [a, b] if a.table.colocation_id == b.table.colocation_id));
    shards.extend(ref_shards);
    let tasks = colocated.then_some(indexes.len());
    Outcome::new(Route::MultiShard { shards, tasks, nodes }, reason)
}

/// `UPDATE … SET <distribution column> = …` is refused unless it provably keeps the value.
fn key_update_error(ctx: &Ctx<'_, '_>, rels: &[DistRel<'_>], target: RelId, sets: &[(Box<str>, SetValue)]) -> Option<Outcome> {
    let d = rels.iter().find(|d| d.rel == target)?;
    let dc = d.table.dist_column.as_ref()?;
    let (_, value) = sets.iter().find(|(c, _)| **c == *dc.name)?;
    let same = match value {
        SetValue::Col(c) => matches!(ctx.bound.col(*c), Some((r, n)) if r == target && n == dc.name),
        SetValue::Value(v) => match (&d.keyset, ctx.vals.key_value(v, dc.ty)) {
            (KeySet::Values(vs), Ok(Some(x))) => vs.len() == 1 && vs.first() == Some(&x),
            _ => false,
        },
        SetValue::Computed => false,
    };
    (!same).then(|| Outcome::error("modifying the partition value of rows is not allowed"))
}

/// Joins Citus refuses with certainty: in a single flat join of base tables, distributed tables
/// that are not all co-located and equi-joined on their distribution columns.
fn join_error(ctx: &Ctx<'_, '_>, classes: &Classes<'_>, rels: &[DistRel<'_>]) -> Option<String> {
    let m = ctx.model;
    let flat = m.regions == 1 && m.rels.iter().all(|r| matches!(r.source, RelSource::Base { .. }));
    // Relations of an EXISTS sublink are left out: Citus pushes a semi-join on the co-located
    // key down, and plans other sublinks recursively rather than refusing them outright.
    let in_sublink = |d: &DistRel<'_>| m.rels.get(d.rel).is_some_and(|r| r.sublink);
    let rels: Vec<&DistRel<'_>> = rels.iter().filter(|d| !in_sublink(d)).collect();
    if !flat || rels.len() < 2 {
        return None;
    }
    let key_class = |d: &DistRel<'_>| d.table.dist_column.as_ref().and_then(|c| classes.class_of((d.rel, &c.name)));
    let first = *rels.first()?;
    let all_joined = rels.iter().all(|d| key_class(d).is_some() && key_class(d) == key_class(first));
    let colocated = rels.iter().all(|d| d.table.colocation_id == first.table.colocation_id);
    if all_joined && colocated {
        return None;
    }
    let modify = !matches!(m.dml, Dml::Select);
    Some(if modify {
        "complex joins are only supported when all distributed tables are co-located and joined on their distribution columns".into()
    } else if all_joined {
        "complex joins are only supported when all distributed tables are joined on their distribution columns with equal operator".into()
    } else {
        "the query contains a join that requires repartitioning".into()
    })
}
