//! Shard-local routing: whether a transaction whose first statement is `decision` may run on
//! the primary that holds its shard (Citus 11+ syncs the metadata to every node, so any node
//! with current metadata plans distributed queries), or must stay on the coordinator, and why;
//! and whether a multi-shard read may be spread over every node that plans queries.
//!
//! Pure and cheap: a few lookups in the snapshot and the statement's cached binding (the one
//! the decision itself just used), no allocation.

use crate::analysis::functions::{is_citus_function, is_sequence_function};
use crate::analysis::model::{Dml, InsertSource, RowValue, SetValue};
use crate::analysis::{StatementInfo, StatementKind};
use crate::plan::bound;
use crate::plan::Bound;
use crate::route::{Decision, Route, ShardRef};
use crate::topology::{Relation, TableKind, Topology};

/// Where a transaction starting with a statement runs under `routing.shard_local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On this node (an index into `Topology::nodes()`): a primary with current metadata, not
    /// the coordinator, holding every shard the statement touches.
    Node(usize),
    /// On the coordinator.
    Coordinator(CoordinatorWhy),
}

/// Why a statement stays on the coordinator under shard-local routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoordinatorWhy {
    /// The route is not one shard (multi-shard, reference, local, unknown, error…).
    NotSingleShard,
    /// The text holds several statements.
    SeveralStatements,
    /// Not a plain SELECT / INSERT / UPDATE / DELETE: DDL, utility, transaction control, SET,
    /// COPY, TRUNCATE, or text the analyser could not parse.
    NotDml,
    /// Calls a Citus function: workers refuse most of them.
    CitusFunction,
    /// Reads a system catalog: the coordinator's differs from a worker's.
    Catalog,
    /// Also touches a relation outside the Citus metadata (plain or temporary table, view):
    /// it exists only on the coordinator.
    LocalRelation,
    /// Calls nextval / currval / setval / lastval: a worker has its own sequence state.
    SequenceCall,
    /// An INSERT (or UPDATE … = DEFAULT) evaluates an int/smallint sequence default, which
    /// Citus refuses on workers.
    IntSequenceDefault,
    /// An INSERT into a table whose columns are not in the snapshot: its defaults are unknown.
    ColumnsUnknown,
    /// The shards of a co-located route do not all have a placement on the lead shard's node.
    ShardsApart,
    /// The shard's node lacks current metadata (`hasmetadata` / `metadatasynced` false) or is
    /// not an active primary.
    NodeWithoutMetadata,
    /// The shard lives on the coordinator (group 0).
    OnCoordinator,
    /// The shard or its placement is not known (value not hashable, no active placement).
    NoPlacement,
}

impl CoordinatorWhy {
    /// Every reason, in label order.
    pub const ALL: [CoordinatorWhy; 13] = [
        CoordinatorWhy::NotSingleShard,
        CoordinatorWhy::SeveralStatements,
        CoordinatorWhy::NotDml,
        CoordinatorWhy::CitusFunction,
        CoordinatorWhy::Catalog,
        CoordinatorWhy::LocalRelation,
        CoordinatorWhy::SequenceCall,
        CoordinatorWhy::IntSequenceDefault,
        CoordinatorWhy::ColumnsUnknown,
        CoordinatorWhy::ShardsApart,
        CoordinatorWhy::NodeWithoutMetadata,
        CoordinatorWhy::OnCoordinator,
        CoordinatorWhy::NoPlacement,
    ];

    /// Stable kebab-case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CoordinatorWhy::NotSingleShard => "not-single-shard",
            CoordinatorWhy::SeveralStatements => "several-statements",
            CoordinatorWhy::NotDml => "not-dml",
            CoordinatorWhy::CitusFunction => "citus-function",
            CoordinatorWhy::Catalog => "catalog",
            CoordinatorWhy::LocalRelation => "local-relation",
            CoordinatorWhy::SequenceCall => "sequence-call",
            CoordinatorWhy::IntSequenceDefault => "int-sequence-default",
            CoordinatorWhy::ColumnsUnknown => "columns-unknown",
            CoordinatorWhy::ShardsApart => "shards-apart",
            CoordinatorWhy::NodeWithoutMetadata => "node-without-metadata",
            CoordinatorWhy::OnCoordinator => "on-coordinator",
            CoordinatorWhy::NoPlacement => "no-placement",
        }
    }

    /// Position in [`CoordinatorWhy::ALL`], for arrays of counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for CoordinatorWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a transaction whose first statement got `decision` runs under shard-local routing.
/// `topo` and `search_path` must be those the decision was made with.
pub fn shard_local(decision: &Decision, topo: &Topology, search_path: &[&str]) -> Placement {
    match shard_node(decision, topo, search_path) {
        Ok(node) => Placement::Node(node),
        Err(why) => Placement::Coordinator(why),
    }
}

/// Whether a statement outside a transaction may run on any node that plans queries
/// (`Topology::query_nodes`): one multi-shard, read-only, non-locking statement that calls no
/// sequence or Citus function and touches only Citus tables. Other functions are allowed, as
/// for single-shard statements: Citus propagates functions created through the coordinator, and
/// a function whose answer varies varies on the coordinator too.
pub fn spreadable(decision: &Decision, topo: &Topology, search_path: &[&str]) -> bool {
    let Ok(info) = only_statement(decision) else { return false };
    matches!(decision.route, Route::MultiShard { .. })
        && info.kind == StatementKind::Read
        && info.is_read_only()
        && !info.locking
        && !info.changes_metadata
        && !info.touches_catalog
        && !info.touches_temp
        && !info.functions.iter().any(|f| is_citus_function(f) || is_sequence_function(f))
        && only_citus_tables(&bound(info, topo, search_path)).is_ok()
}

fn only_statement(decision: &Decision) -> Result<&StatementInfo, CoordinatorWhy> {
    match decision.analysis.statements.as_slice() {
        [one] if decision.statements.is_empty() => Ok(one),
        [] => Err(CoordinatorWhy::NotDml),
        _ => Err(CoordinatorWhy::SeveralStatements),
    }
}

fn shard_node(decision: &Decision, topo: &Topology, search_path: &[&str]) -> Result<usize, CoordinatorWhy> {
    let info = only_statement(decision)?;
    match &info.kind {
        // TRUNCATE is a write without a DML model.
        StatementKind::Write if info.model.dml == Dml::Select => return Err(CoordinatorWhy::NotDml),
        StatementKind::Read | StatementKind::Write => {}
        StatementKind::CitusMetadataCall { .. } => return Err(CoordinatorWhy::CitusFunction),
        _ => return Err(CoordinatorWhy::NotDml),
    }
    if info.functions.iter().any(|f| is_citus_function(f)) {
        return Err(CoordinatorWhy::CitusFunction);
    }
    if info.touches_catalog {
        return Err(CoordinatorWhy::Catalog);
    }
    let Route::SingleShard { shards, .. } = &decision.route else { return Err(CoordinatorWhy::NotSingleShard) };
    if info.touches_temp {
        return Err(CoordinatorWhy::LocalRelation);
    }
    let bound = bound(info, topo, search_path);
    only_citus_tables(&bound)?;
    if info.functions.iter().any(|f| is_sequence_function(f)) {
        return Err(CoordinatorWhy::SequenceCall);
    }
    sequence_defaults(info, &bound, topo)?;
    node_of(shards, topo)
}

/// Every relation the statement names is a Citus table (plain tables, views and temporary
/// tables exist only on the coordinator).
fn only_citus_tables(bound: &Bound<'_>) -> Result<(), CoordinatorWhy> {
    for r in bound.rels().iter().flatten() {
        match r {
            Relation::Citus(_) => {}
            Relation::Catalog => return Err(CoordinatorWhy::Catalog),
            Relation::Local(_) | Relation::View | Relation::Temp | Relation::Unknown => return Err(CoordinatorWhy::LocalRelation),
        }
    }
    Ok(())
}

/// Refuses a write that would evaluate an int/smallint sequence default of its target.
fn sequence_defaults(info: &StatementInfo, bound: &Bound<'_>, topo: &Topology) -> Result<(), CoordinatorWhy> {
    let target = match &info.model.dml {
        Dml::Insert { target, .. } | Dml::Update { target, .. } => *target,
        Dml::Select | Dml::Delete { .. } => return Ok(()),
    };
    let Some(Relation::Citus(id)) = bound.rel(target) else { return Ok(()) };
    let table = topo.table(id).ok_or(CoordinatorWhy::NoPlacement)?;
    match &info.model.dml {
        Dml::Insert { columns, source, .. } => {
            if table.columns.is_empty() {
                return Err(CoordinatorWhy::ColumnsUnknown);
            }
            for (i, c) in table.columns.iter().enumerate().filter(|(_, c)| c.int_sequence_default) {
                let pos = match columns {
                    Some(list) => list.iter().position(|n| **n == *c.name),
                    None => Some(i),
                };
                let given = pos.is_some_and(|p| match source {
                    InsertSource::DefaultValues => false,
                    InsertSource::Values(rows) => {
                        rows.iter().all(|row| matches!(row.get(p), Some(RowValue::Value(_) | RowValue::Computed)))
                    }
                    InsertSource::Select(outputs) => p < outputs.len(),
                });
                if !given {
                    return Err(CoordinatorWhy::IntSequenceDefault);
                }
            }
            Ok(())
        }
        Dml::Update { sets, .. } => {
            // The model reads `SET id = DEFAULT` as a column named "default": any assignment to
            // such a column other than a constant stays on the coordinator (rare on a serial).
            let defaulted = sets.iter().any(|(name, v)| {
                !matches!(v, SetValue::Value(_)) && table.columns.iter().any(|c| c.int_sequence_default && c.name == **name)
            });
            if defaulted {
                Err(CoordinatorWhy::IntSequenceDefault)
            } else {
                Ok(())
            }
        }
        Dml::Select | Dml::Delete { .. } => Ok(()),
    }
}

/// The node of the route's lead (first distributed) shard, if every shard of the route has a
/// placement there and it can take the statement.
fn node_of(shards: &[ShardRef], topo: &Topology) -> Result<usize, CoordinatorWhy> {
    let lookup = |r: &ShardRef| r.shard_id.and_then(|id| topo.shard(id)).ok_or(CoordinatorWhy::NoPlacement);
    let mut lead = None;
    for r in shards {
        let (table, shard) = lookup(r)?;
        if table.kind != TableKind::Reference {
            lead = Some(shard);
            break;
        }
    }
    let lead = lead.ok_or(CoordinatorWhy::NoPlacement)?;
    let node = lead.nodes.iter().copied().find(|n| topo.node(*n).is_some_and(|n| n.is_usable())).ok_or(CoordinatorWhy::NoPlacement)?;
    for r in shards {
        if !lookup(r)?.1.nodes.contains(&node) {
            return Err(CoordinatorWhy::ShardsApart);
        }
    }
    let n = topo.node(node).ok_or(CoordinatorWhy::NoPlacement)?;
    if n.is_coordinator() {
        Err(CoordinatorWhy::OnCoordinator)
    } else if !n.plans_queries() {
        Err(CoordinatorWhy::NodeWithoutMetadata)
    } else {
        Ok(node)
    }
}
