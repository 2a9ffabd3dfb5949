//! Binding a model to a topology: what each relation is, which relation each column slot means
//! (unqualified names need the tables' column lists), and which sublinks are correlated.

use crate::analysis::model::{ColId, Model, RelId, RelSource, ScopeId};
use crate::topology::{IdentityTag, Relation, TableKind, Topology};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Has {
    Yes,
    No,
    Maybe,
}

/// A column slot resolved to (relation, column name).
pub(crate) type Resolved<'m> = Option<(RelId, &'m str)>;

/// The result of binding, owned so that it can be cached with the model: names are kept as the
/// slot whose name it is, and the snapshot and search_path it holds for travel with it.
#[derive(Debug)]
pub(crate) struct Binding {
    snapshot: IdentityTag,
    search_path: Box<[Box<str>]>,
    /// Per relation: the catalog relation for base tables, None for derived/opaque ones.
    rels: Vec<Option<Relation>>,
    /// Per column slot: (relation, the slot carrying the column's name).
    cols: Vec<Option<(RelId, ColId)>>,
    correlated: Vec<bool>,
}

impl Binding {
    /// Whether this binding was made against this snapshot and search_path.
    pub fn is_for(&self, topo: &Topology, search_path: &[&str]) -> bool {
        self.snapshot.is(topo.identity())
            && self.search_path.len() == search_path.len()
            && self.search_path.iter().zip(search_path).all(|(a, b)| **a == **b)
    }
}

/// A binding read through its model.
pub(crate) struct Bound<'m> {
    model: &'m Model,
    binding: Arc<Binding>,
}

impl<'m> Bound<'m> {
    pub fn new(model: &'m Model, binding: Arc<Binding>) -> Self {
        Bound { model, binding }
    }
    pub fn rels(&self) -> &[Option<Relation>] {
        &self.binding.rels
    }
    pub fn rel(&self, r: RelId) -> Option<Relation> {
        self.binding.rels.get(r).copied().flatten()
    }
    pub fn col(&self, c: ColId) -> Resolved<'m> {
        let (rel, named) = self.binding.cols.get(c).copied().flatten()?;
        Some((rel, &self.model.cols.get(named)?.name))
    }
    /// Every resolved column slot.
    pub fn cols(&self) -> impl Iterator<Item = (RelId, &'m str)> + '_ {
        (0..self.binding.cols.len()).filter_map(|c| self.col(c))
    }
    /// Unknown scopes count as correlated.
    pub fn correlated(&self, s: ScopeId) -> bool {
        self.binding.correlated.get(s).copied().unwrap_or(true)
    }
}

fn has_column(m: &Model, topo: &Topology, rels: &[Option<Relation>], rel: RelId, name: &str) -> Has {
    let Some(r) = m.rels.get(rel) else { return Has::No };
    match &r.source {
        RelSource::Base { .. } => match rels.get(rel).copied().flatten() {
            Some(Relation::Citus(id)) => match topo.table(id) {
                Some(t) if !t.columns.is_empty() => {
                    if t.columns.iter().any(|c| c.name == name) {
                        Has::Yes
                    } else {
                        Has::No
                    }
                }
                Some(t) if t.dist_column.as_ref().is_some_and(|d| d.name == name) => Has::Yes,
                Some(t) if t.kind == TableKind::Reference && t.columns.is_empty() => Has::Maybe,
                _ => Has::Maybe,
            },
            _ => Has::Maybe,
        },
        RelSource::Derived { outputs: None, star_of: Some(inner) } => has_column(m, topo, rels, *inner, name),
        RelSource::Derived { outputs: Some(o), .. } | RelSource::Opaque { columns: Some(o) } => {
            if o.iter().any(|c| &**c == name) {
                Has::Yes
            } else {
                Has::No
            }
        }
        _ => Has::Maybe,
    }
}

fn mark(m: &Model, correlated: &mut [bool], from: ScopeId, target: ScopeId) {
    let mut s = Some(from);
    let mut guard = 0;
    while let Some(cur) = s {
        if cur == target || guard > m.scopes.len() {
            break;
        }
        if let Some(c) = correlated.get_mut(cur) {
            *c = true;
        }
        s = m.scopes.get(cur).and_then(|sc| sc.parent);
        guard += 1;
    }
}

fn resolve_col(
    m: &Model,
    topo: &Topology,
    rels: &[Option<Relation>],
    correlated: &mut [bool],
    col: ColId,
    depth: usize,
) -> Option<(RelId, ColId)> {
    let slot = m.cols.get(col)?;
    if slot.dead || depth > 8 {
        return None;
    }
    if let Some(r) = slot.fixed {
        return Some((r, col));
    }
    if let Some((a, b)) = slot.among {
        // Only relations visible in the scope (not those inside a derived table on that side).
        let visible = |r: &RelId| m.scopes.get(slot.scope).is_some_and(|s| s.members.iter().any(|(_, x)| x == r));
        let yes: Vec<RelId> = (a..b).filter(visible).filter(|r| has_column(m, topo, rels, *r, &slot.name) == Has::Yes).collect();
        return match yes.as_slice() {
            [r] => Some((*r, col)),
            _ => None,
        };
    }
    let mut scope = Some(slot.scope);
    while let Some(s) = scope {
        let sc = m.scopes.get(s)?;
        if let Some((_, merged)) = sc.using.iter().find(|(n, _)| **n == *slot.name) {
            return merged.and_then(|c| resolve_col(m, topo, rels, correlated, c, depth + 1));
        }
        let mut yes = None;
        let mut count = 0;
        let mut maybe = false;
        for (_, rel) in &sc.members {
            match has_column(m, topo, rels, *rel, &slot.name) {
                Has::Yes => {
                    yes = Some(*rel);
                    count += 1;
                }
                Has::Maybe => maybe = true,
                Has::No => {}
            }
        }
        match (count, yes) {
            (1, Some(r)) => {
                mark(m, correlated, slot.scope, s);
                return Some((r, col));
            }
            (0, _) if !maybe => scope = sc.parent,
            _ => return None,
        }
    }
    None
}

/// Resolves every relation and column slot of `m`; `Bound::new` reads the result.
pub(crate) fn bind(m: &Model, topo: &Topology, search_path: &[&str]) -> Binding {
    let rels: Vec<Option<Relation>> = m
        .rels
        .iter()
        .map(|r| match &r.source {
            RelSource::Base { schema, name } => Some(topo.resolve(schema.as_deref(), name, search_path)),
            _ => None,
        })
        .collect();
    let mut correlated = m.correlated.clone();
    let cols = (0..m.cols.len()).map(|c| resolve_col(m, topo, &rels, &mut correlated, c, 0)).collect();
    Binding { snapshot: topo.identity().tag(), search_path: search_path.iter().map(|s| Box::from(*s)).collect(), rels, cols, correlated }
}
