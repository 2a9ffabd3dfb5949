//! Shared state of one statement's walk: relations, scopes, column slots, conjuncts.

use super::info::InfoAcc;
use super::model::{ColId, ColSlot, Conj, Link, LinkTarget, Model, Pred, RegionId, Rel, RelId, RelSource, Scope, ScopeId};
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Query};

/// A CTE visible while walking a query.
pub(crate) struct CteDef<'a> {
    pub name: Box<str>,
    pub query: &'a Query,
    pub columns: Vec<Box<str>>,
    /// Inlined (NOT MATERIALIZED semantics, referenced once): walked at its reference.
    pub inline: bool,
    /// Materialized CTE: output names once walked.
    pub outputs: Option<Option<Vec<Box<str>>>>,
}

pub(crate) struct Builder<'a> {
    pub m: Model,
    pub info: InfoAcc,
    pub ctes: Vec<CteDef<'a>>,
    /// Sublink wrapper scopes whose correlation voids what is being built.
    pub conds: Vec<ScopeId>,
    pub selects_seen: usize,
}

/// PostgreSQL folds unquoted identifiers to lower case.
pub(crate) fn fold(id: &Ident) -> Box<str> {
    if id.quote_style.is_some() {
        id.value.as_str().into()
    } else {
        id.value.to_ascii_lowercase().into()
    }
}

/// The identifier parts of an object name (None if one is not a plain identifier).
pub(crate) fn name_parts(name: &ObjectName) -> Option<Vec<Box<str>>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Some(fold(id)),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

impl<'a> Builder<'a> {
    pub fn new() -> Self {
        Builder { m: Model::default(), info: InfoAcc::default(), ctes: Vec::new(), conds: Vec::new(), selects_seen: 0 }
    }

    pub fn giveup(&mut self, why: impl Into<String>) {
        if self.m.giveup.is_none() {
            self.m.giveup = Some(why.into());
        }
    }

    pub fn new_region(&mut self) -> RegionId {
        self.m.regions += 1;
        self.m.regions - 1
    }

    pub fn new_scope(&mut self, parent: Option<ScopeId>) -> ScopeId {
        self.m.scopes.push(Scope { parent, ..Scope::default() });
        self.m.correlated.push(false);
        self.m.scopes.len() - 1
    }

    pub fn add_rel(&mut self, source: RelSource, region: RegionId, scope: Option<(ScopeId, Box<str>)>) -> RelId {
        let id = self.m.rels.len();
        let alias = scope.as_ref().map(|(_, n)| n.clone());
        self.m.rels.push(Rel { source, region, alias, nullable: false, sublink: false });
        if let Some((s, name)) = scope {
            if let Some(sc) = self.m.scopes.get_mut(s) {
                sc.members.push((name, id));
            }
        }
        id
    }

    pub fn push_conj(&mut self, pred: Pred, region: RegionId, only: Option<(RelId, RelId)>) {
        if matches!(pred, Pred::Opaque) {
            return;
        }
        self.m.conjs.push(Conj { pred, region, only, unless_correlated: self.conds.clone() });
    }

    pub fn push_link(&mut self, rel: RelId, column: Box<str>, target: LinkTarget, both_ways: bool) {
        self.m.links.push(Link { rel, column, target, both_ways, unless_correlated: self.conds.clone() });
    }

    /// A slot fixed to a relation's column (derived outputs, DML targets).
    pub fn fixed_col(&mut self, scope: ScopeId, rel: RelId, name: Box<str>) -> ColId {
        self.m.cols.push(ColSlot { scope, name, fixed: Some(rel), among: None, dead: false });
        self.m.cols.len() - 1
    }

    /// An unqualified column: resolved against the scope chain when a topology is known.
    pub fn bare_col(&mut self, scope: ScopeId, name: Box<str>, among: Option<(RelId, RelId)>) -> ColId {
        self.m.cols.push(ColSlot { scope, name, fixed: None, among, dead: false });
        self.m.cols.len() - 1
    }

    /// `q.col` or `schema.table.col`: resolved now by walking the scope chain.
    pub fn qualified_col(&mut self, scope: ScopeId, qualifier: &[Box<str>], name: Box<str>) -> ColId {
        let found = self.find_qualified(scope, qualifier);
        let dead = found.is_none();
        if let Some((rel_scope, _)) = found {
            self.mark_correlated(scope, rel_scope);
        }
        self.m.cols.push(ColSlot { scope, name, fixed: found.map(|f| f.1), among: None, dead });
        self.m.cols.len() - 1
    }

    fn find_qualified(&self, mut scope: ScopeId, qualifier: &[Box<str>]) -> Option<(ScopeId, RelId)> {
        loop {
            let sc = self.m.scopes.get(scope)?;
            for (visible, rel) in &sc.members {
                let matches = match qualifier {
                    [q] => visible == q,
                    [schema, table] => {
                        visible == table
                            && matches!(&self.m.rels.get(*rel)?.source,
                                RelSource::Base { schema: s, name } if name == table && s.as_deref().is_none_or(|s| s == &**schema))
                    }
                    _ => false,
                };
                if matches {
                    return Some((scope, *rel));
                }
            }
            scope = sc.parent?;
        }
    }

    /// A reference from `from` to a relation of `target`: every scope in between is correlated.
    pub fn mark_correlated(&mut self, from: ScopeId, target: ScopeId) {
        let mut s = Some(from);
        while let Some(cur) = s {
            if cur == target {
                break;
            }
            if let Some(c) = self.m.correlated.get_mut(cur) {
                *c = true;
            }
            s = self.m.scopes.get(cur).and_then(|sc| sc.parent);
        }
    }

    pub fn add_using(&mut self, scope: ScopeId, name: Box<str>, col: Option<ColId>) {
        if let Some(sc) = self.m.scopes.get_mut(scope) {
            sc.using.push((name, col));
        }
    }

    pub fn find_cte(&self, name: &str) -> Option<usize> {
        self.ctes.iter().rposition(|c| &*c.name == name)
    }
}
