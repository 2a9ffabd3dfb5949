//! Walking queries: WITH, set operations, SELECT, FROM items, joins and derived tables, following
//! what PostgreSQL's planner flattens (so equivalences reach the relations Citus prunes).

use super::builder::{fold, name_parts, Builder, CteDef};
use super::model::{ColId, LinkTarget, Pred, RegionId, RelId, RelSource, ScopeId, ValueExpr};
use super::query_util::{contains_aggregate, count_word, output_name, split_and, star_source};
use super::shape_of::{is_simple, pushdown_ok};
use sqlparser::ast::{
    Cte, CteAsMaterialized, Expr, GroupByExpr, InTarget, Join, JoinConstraint, JoinOperator, Query, Select, SelectItem, SetExpr,
    TableAlias, TableFactor, TableWithJoins,
};

/// What an output column of a query is made of.
#[derive(Debug, Clone)]
pub(crate) enum OutSrc {
    Col(ColId),
    Value(ValueExpr),
    Other,
}

pub(crate) struct QueryOut {
    /// Output columns (name, source); None when not listable (`SELECT *`).
    pub outputs: Option<Vec<(Box<str>, OutSrc)>>,
    pub scope: ScopeId,
}

#[derive(Clone, Copy, PartialEq)]
enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

impl<'a> Builder<'a> {
    pub fn query(&mut self, q: &'a Query, parent: Option<ScopeId>, region: RegionId) -> QueryOut {
        let ctes_before = self.ctes.len();
        if let Some(with) = &q.with {
            if with.recursive {
                self.giveup("recursive CTE");
            }
            let body_text = q.body.to_string().to_ascii_lowercase();
            for cte in &with.cte_tables {
                self.define_cte(cte, &body_text, &with.cte_tables, parent, region);
            }
        }
        let out = self.set_expr(&q.body, parent, region);
        if let Some(ob) = &q.order_by {
            if let sqlparser::ast::OrderByKind::Expressions(items) = &ob.kind {
                for i in items {
                    self.walk_expr(&i.expr, out.scope, region);
                }
            }
        }
        if let Some(sqlparser::ast::LimitClause::LimitOffset { limit, offset, .. }) = &q.limit_clause {
            if let Some(l) = limit {
                self.walk_expr(l, out.scope, region);
            }
            if let Some(o) = offset {
                self.walk_expr(&o.value, out.scope, region);
            }
        }
        if !q.locks.is_empty() {
            self.m.locking = true;
        }
        self.ctes.truncate(ctes_before);
        out
    }

    fn define_cte(&mut self, cte: &'a Cte, body: &str, all: &[Cte], parent: Option<ScopeId>, region: RegionId) {
        let name = fold(&cte.alias.name);
        if !matches!(&*cte.query.body, SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_)) {
            self.giveup("data-modifying CTE");
        }
        // References in the main body and in the other CTEs; over-counting only costs pruning.
        let mut refs = count_word(body, &name);
        for other in all {
            if !std::ptr::eq(other, cte) {
                refs += count_word(&other.query.to_string().to_ascii_lowercase(), &name);
            }
        }
        let columns = cte.alias.columns.iter().map(|c| fold(&c.name)).collect();
        let materialized = matches!(cte.materialized, Some(CteAsMaterialized::Materialized));
        let inline = refs == 1 && !materialized;
        let mut def = CteDef { name, query: &cte.query, columns, inline, outputs: None };
        if refs == 0 {
            // PostgreSQL drops unreferenced SELECT CTEs before planning.
            def.outputs = Some(None);
        } else if !inline {
            // Planned once on its own: its relations count for routing, nothing is pushed in.
            let r = self.new_region();
            let out = self.query(&cte.query, parent, r);
            def.outputs = Some(out.outputs.map(|o| o.into_iter().map(|(n, _)| n).collect()));
        }
        let _ = region;
        self.ctes.push(def);
    }

    fn set_expr(&mut self, body: &'a SetExpr, parent: Option<ScopeId>, region: RegionId) -> QueryOut {
        match body {
            SetExpr::Select(s) => self.select(s, parent, region),
            SetExpr::Query(q) => self.query(q, parent, region),
            SetExpr::SetOperation { left, right, .. } => {
                let lr = self.new_region();
                let l = self.set_expr(left, parent, lr);
                let rr = self.new_region();
                self.set_expr(right, parent, rr);
                let outputs = l.outputs.map(|o| o.into_iter().map(|(n, _)| (n, OutSrc::Other)).collect());
                QueryOut { outputs, scope: l.scope }
            }
            SetExpr::Values(v) => {
                let scope = self.new_scope(parent);
                let mut outputs = Vec::new();
                for (ri, row) in v.rows.iter().enumerate() {
                    for (ci, e) in row.iter().enumerate() {
                        self.walk_expr(e, scope, region);
                        if ri == 0 {
                            let src = match self.value_of(e) {
                                Some(val) if v.rows.len() == 1 => OutSrc::Value(val),
                                _ => OutSrc::Other,
                            };
                            outputs.push((format!("column{}", ci + 1).into(), src));
                        }
                    }
                }
                QueryOut { outputs: Some(outputs), scope }
            }
            SetExpr::Table(t) => {
                let scope = self.new_scope(parent);
                if let Some(name) = &t.table_name {
                    let schema = t.schema_name.as_ref().map(fold);
                    self.base_rel(schema, fold(name), None, scope, region);
                }
                QueryOut { outputs: None, scope }
            }
            _ => {
                self.giveup("data-modifying statement inside a query");
                QueryOut { outputs: None, scope: self.new_scope(parent) }
            }
        }
    }

    fn select(&mut self, s: &'a Select, parent: Option<ScopeId>, region: RegionId) -> QueryOut {
        self.selects_seen += 1;
        let scope = self.new_scope(parent);
        if s.into.is_some() {
            self.giveup("SELECT INTO creates a table");
        }
        for twj in &s.from {
            self.walk_from_item(twj, scope, region);
        }
        if let Some(w) = &s.selection {
            self.conjuncts(w, scope, region, None, true);
        }
        if let GroupByExpr::Expressions(exprs, _) = &s.group_by {
            for e in exprs {
                self.walk_expr(e, scope, region);
            }
        }
        if let Some(h) = &s.having {
            // PostgreSQL moves HAVING conjuncts without aggregates into WHERE.
            for c in split_and(h) {
                if contains_aggregate(c) {
                    self.walk_expr(c, scope, region);
                } else {
                    let p = self.pred(c, scope, region);
                    self.push_conj(p, region, None);
                }
            }
        }
        let mut outputs = Some(Vec::new());
        for item in &s.projection {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(fold(alias))),
                SelectItem::ExprWithAliases { expr, .. } => (expr, None),
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    outputs = None;
                    continue;
                }
            };
            self.walk_expr(expr, scope, region);
            let src = if let Some(c) = self.col_of(expr, scope) {
                OutSrc::Col(c)
            } else if let Some(v) = self.value_of(expr) {
                OutSrc::Value(v)
            } else {
                OutSrc::Other
            };
            let name = alias.unwrap_or_else(|| output_name(expr));
            if let Some(o) = outputs.as_mut() {
                o.push((name, src));
            }
        }
        QueryOut { outputs, scope }
    }

    pub fn walk_from_item(&mut self, twj: &'a TableWithJoins, scope: ScopeId, region: RegionId) {
        let start = (self.m.rels.len(), self.m.conjs.len());
        self.table_factor(&twj.relation, scope, region);
        for j in &twj.joins {
            self.join(j, start, scope, region);
        }
    }

    /// Quals that came from inside a flattened nullable side restrict only that side.
    fn confine(&mut self, conjs: std::ops::Range<usize>, region: RegionId, only: (RelId, RelId)) {
        for c in self.m.conjs.get_mut(conjs).into_iter().flatten() {
            if c.region == region && c.only.is_none() {
                c.only = Some(only);
            }
        }
    }

    fn join(&mut self, j: &'a Join, (start, conj_start): (RelId, usize), scope: ScopeId, region: RegionId) {
        let (right_start, right_conjs) = (self.m.rels.len(), self.m.conjs.len());
        self.table_factor(&j.relation, scope, region);
        let (right_end, right_conjs_end) = (self.m.rels.len(), self.m.conjs.len());
        let (constraint, kind) = match &j.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::CrossJoin(c) => (c, JoinKind::Inner),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (c, JoinKind::Left),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (c, JoinKind::Right),
            JoinOperator::FullOuter(c) => (c, JoinKind::Full),
            _ => {
                self.giveup("join type PostgreSQL does not have");
                return;
            }
        };
        let nullable = match kind {
            JoinKind::Inner => None,
            JoinKind::Left => Some((right_start, right_end)),
            JoinKind::Right => Some((start, right_start)),
            JoinKind::Full => Some((start, right_end)),
        };
        if let Some((a, b)) = nullable {
            for r in self.m.rels.get_mut(a..b).into_iter().flatten() {
                r.nullable = true;
            }
        }
        match kind {
            JoinKind::Inner => {}
            JoinKind::Left => self.confine(right_conjs..right_conjs_end, region, (right_start, right_end)),
            JoinKind::Right => self.confine(conj_start..right_conjs, region, (start, right_start)),
            JoinKind::Full => {
                self.confine(conj_start..right_conjs, region, (start, right_start));
                self.confine(right_conjs..right_conjs_end, region, (right_start, right_end));
            }
        }
        match constraint {
            JoinConstraint::On(e) => {
                if kind == JoinKind::Full {
                    self.walk_expr(e, scope, region);
                } else {
                    self.conjuncts(e, scope, region, nullable, false);
                }
            }
            JoinConstraint::Using(cols) => {
                for c in cols {
                    let Some(name) = name_parts(c).and_then(|p| p.last().cloned()) else { continue };
                    let l = self.bare_col(scope, name.clone(), Some((start, right_start)));
                    let r = self.bare_col(scope, name.clone(), Some((right_start, right_end)));
                    let merged = match kind {
                        JoinKind::Inner | JoinKind::Left => Some(l),
                        JoinKind::Right => Some(r),
                        JoinKind::Full => None,
                    };
                    self.add_using(scope, name, merged);
                    if kind != JoinKind::Full {
                        self.push_conj(Pred::ColEq(l, r), region, nullable);
                    }
                }
            }
            _ => {}
        }
    }

    fn base_rel(
        &mut self,
        schema: Option<Box<str>>,
        name: Box<str>,
        alias: Option<&TableAlias>,
        scope: ScopeId,
        region: RegionId,
    ) -> RelId {
        self.info.table(schema.as_deref(), &name);
        let visible = alias.map(|a| fold(&a.name)).unwrap_or_else(|| name.clone());
        self.add_rel(RelSource::Base { schema, name }, region, Some((scope, visible)))
    }

    fn table_factor(&mut self, tf: &'a TableFactor, scope: ScopeId, region: RegionId) {
        match tf {
            TableFactor::Table { name, alias, args, .. } => {
                let Some(parts) = name_parts(name) else {
                    self.giveup("unsupported table name");
                    return;
                };
                if let Some(a) = args {
                    for arg in &a.args {
                        self.walk_function_arg(arg, scope, region);
                    }
                    self.opaque_rel(parts.last().cloned(), alias.as_ref(), scope, region);
                    return;
                }
                match parts.as_slice() {
                    [n] => {
                        if let Some(i) = self.find_cte(n) {
                            self.cte_ref(i, alias.as_ref(), scope, region);
                        } else {
                            self.base_rel(None, n.clone(), alias.as_ref(), scope, region);
                        }
                    }
                    [s, n] => {
                        self.base_rel(Some(s.clone()), n.clone(), alias.as_ref(), scope, region);
                    }
                    [_, s, n] => {
                        self.base_rel(Some(s.clone()), n.clone(), alias.as_ref(), scope, region);
                    }
                    _ => self.giveup("unsupported table name"),
                }
            }
            TableFactor::Derived { subquery, alias, .. } => {
                let visible = alias.as_ref().map(|a| fold(&a.name)).unwrap_or_else(|| "?subquery?".into());
                let cols: Vec<Box<str>> = alias.iter().flat_map(|a| a.columns.iter().map(|c| fold(&c.name))).collect();
                self.derived(subquery, Some((scope, visible)), &cols, scope, region);
            }
            TableFactor::NestedJoin { table_with_joins, .. } => self.walk_from_item(table_with_joins, scope, region),
            TableFactor::Function { name, args, alias, .. } => {
                for a in args {
                    self.walk_function_arg(a, scope, region);
                }
                let n = name_parts(name).and_then(|p| p.last().cloned());
                self.opaque_rel(n, alias.as_ref(), scope, region);
            }
            TableFactor::UNNEST { alias, array_exprs, .. } => {
                for e in array_exprs {
                    self.walk_expr(e, scope, region);
                }
                self.opaque_rel(Some("unnest".into()), alias.as_ref(), scope, region);
            }
            TableFactor::TableFunction { expr, alias } => {
                self.walk_expr(expr, scope, region);
                self.opaque_rel(None, alias.as_ref(), scope, region);
            }
            _ => self.giveup("unsupported FROM item"),
        }
    }

    fn opaque_rel(&mut self, name: Option<Box<str>>, alias: Option<&TableAlias>, scope: ScopeId, region: RegionId) {
        if let Some(n) = &name {
            self.info.function(n);
        }
        let visible = alias.map(|a| fold(&a.name)).or(name).unwrap_or_else(|| "?function?".into());
        let columns = alias.filter(|a| !a.columns.is_empty()).map(|a| a.columns.iter().map(|c| fold(&c.name)).collect());
        self.add_rel(RelSource::Opaque { columns }, region, Some((scope, visible)));
    }

    fn cte_ref(&mut self, i: usize, alias: Option<&TableAlias>, scope: ScopeId, region: RegionId) {
        let Some(def) = self.ctes.get(i) else { return };
        let visible = alias.map(|a| fold(&a.name)).unwrap_or_else(|| def.name.clone());
        let mut cols: Vec<Box<str>> = alias.iter().flat_map(|a| a.columns.iter().map(|c| fold(&c.name))).collect();
        if cols.is_empty() {
            cols = def.columns.clone();
        }
        if def.inline {
            let q = def.query;
            // The CTE body sees only the CTEs defined before it.
            let saved: Vec<CteDef<'a>> = self.ctes.drain(i..).collect();
            self.derived(q, Some((scope, visible)), &cols, scope, region);
            self.ctes.extend(saved);
        } else {
            let outputs = def.outputs.clone().flatten();
            let outputs = if cols.is_empty() { outputs } else { Some(cols) };
            self.add_rel(RelSource::Derived { outputs, star_of: None }, region, Some((scope, visible)));
        }
    }

    /// A subquery used as a relation: flattened into `region` when PostgreSQL would pull it up,
    /// else its own region with quals pushed down into it where that is safe.
    pub fn derived(
        &mut self,
        q: &'a Query,
        member: Option<(ScopeId, Box<str>)>,
        alias_cols: &[Box<str>],
        scope: ScopeId,
        region: RegionId,
    ) -> (RelId, Option<Vec<Box<str>>>) {
        let simple = is_simple(q);
        let pushdown = pushdown_ok(q);
        let inner_region = if simple { region } else { self.new_region() };
        let out = self.query(q, Some(scope), inner_region);
        let names: Option<Vec<Box<str>>> = out
            .outputs
            .as_ref()
            .map(|o| o.iter().enumerate().map(|(i, (n, _))| alias_cols.get(i).cloned().unwrap_or_else(|| n.clone())).collect());
        let names = if names.is_none() && !alias_cols.is_empty() { Some(alias_cols.to_vec()) } else { names };
        let star_of = if names.is_none() { star_source(q, self.m.scopes.get(out.scope).map(|s| s.members.as_slice())) } else { None };
        let rel = self.add_rel(RelSource::Derived { outputs: names.clone(), star_of }, region, member);
        if let Some(inner) = star_of {
            if simple || pushdown {
                self.push_link(rel, "*".into(), LinkTarget::Star(inner), simple);
            }
        }
        if let (Some(outs), Some(names)) = (out.outputs, &names) {
            for ((_, src), name) in outs.into_iter().zip(names) {
                match src {
                    OutSrc::Col(c) if simple => self.push_link(rel, name.clone(), LinkTarget::Col(c), true),
                    OutSrc::Col(c) if pushdown => self.push_link(rel, name.clone(), LinkTarget::Col(c), false),
                    OutSrc::Value(v) if simple => self.push_link(rel, name.clone(), LinkTarget::Value(v), true),
                    _ => {}
                }
            }
        }
        (rel, names)
    }

    /// Split a WHERE/ON into conjuncts; at WHERE level pull up `IN (SELECT …)` and `EXISTS`.
    pub fn conjuncts(&mut self, e: &'a Expr, scope: ScopeId, region: RegionId, only: Option<(RelId, RelId)>, top: bool) {
        for c in split_and(e) {
            match c {
                Expr::In { expr, target: InTarget::Subquery(subquery), negated: false, .. } if top => {
                    self.in_sublink(expr, subquery, scope, region)
                }
                Expr::Exists { subquery, negated } if top => self.exists_sublink(subquery, *negated, scope, region),
                _ => {
                    let p = self.pred(c, scope, region);
                    self.push_conj(p, region, only);
                }
            }
        }
    }

    /// `x IN (SELECT y …)` becomes a semi-join with `x = y` unless the subquery is correlated.
    pub fn in_sublink(&mut self, lhs: &'a Expr, q: &'a Query, scope: ScopeId, region: RegionId) {
        let lhs_col = self.col_of(lhs, scope);
        if lhs_col.is_none() {
            self.walk_expr(lhs, scope, region);
        }
        let wrapper = self.new_scope(Some(scope));
        self.conds.push(wrapper);
        let (rel, names) = self.derived(q, None, &[], wrapper, region);
        if let (Some(l), Some([first])) = (lhs_col, names.as_deref()) {
            let r = self.fixed_col(wrapper, rel, first.clone());
            self.push_conj(Pred::ColEq(l, r), region, None);
        }
        self.conds.pop();
    }

    /// EXISTS / NOT EXISTS: a simple subquery joins the region, restricting only its own relations.
    fn exists_sublink(&mut self, q: &'a Query, negated: bool, scope: ScopeId, region: RegionId) {
        if !is_simple(q) {
            let r = self.new_region();
            self.query(q, Some(scope), r);
            return;
        }
        let wrapper = self.new_scope(Some(scope));
        let (rel_start, conj_start) = (self.m.rels.len(), self.m.conjs.len());
        self.query(q, Some(wrapper), region);
        let rel_end = self.m.rels.len();
        for r in self.m.rels.get_mut(rel_start..rel_end).into_iter().flatten() {
            r.sublink = true;
        }
        for c in self.m.conjs.iter_mut().skip(conj_start) {
            if c.region == region && c.only.is_none() {
                c.only = Some((rel_start, rel_end));
            }
        }
        if negated {
            for r in self.m.rels.get_mut(rel_start..rel_end).into_iter().flatten() {
                r.nullable = true;
            }
        }
    }
}
