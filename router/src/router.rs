//! The entry point: shape cache, simple-protocol queries, and prepared statements analysed once
//! at Parse and routed per Bind.

use crate::analysis::model::{Pred, ValueExpr};
use crate::analysis::{analyze_statements, Analysis};
use crate::class::Class;
use crate::plan::values::Bindings;
use crate::plan::{bound, decide, Outcome};
use crate::route::{Decision, Route};
use crate::shape::{normalize, shape_id, Literal, ShapeCache};
use crate::topology::{Relation, Topology};
use std::sync::Arc;

/// Tunables of a router.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Maximum number of cached statement shapes.
    pub shape_cache_capacity: usize,
    /// A multi-row INSERT with at least this many rows is classed as bulk insert.
    pub bulk_insert_rows: usize,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions { shape_cache_capacity: 10_000, bulk_insert_rows: 1000 }
    }
}

/// Routes statements. `Send + Sync`; share one per process.
pub struct Router {
    cache: ShapeCache<Analysis>,
    bulk_insert_rows: usize,
}

/// A statement analysed at Parse: only its parameters are evaluated at Bind.
#[derive(Debug)]
pub struct Prepared {
    sql: Box<str>,
    literals: Vec<Literal>,
    param_types: Vec<u32>,
    pub analysis: Arc<Analysis>,
}

impl Prepared {
    /// Parameter type OIDs as given at Parse (0 = unspecified).
    pub fn declared_param_types(&self) -> &[u32] {
        &self.param_types
    }

    /// Parameter types with unspecified ones inferred from the distribution or table column they
    /// are compared with or inserted into (0 when the router cannot tell).
    pub fn param_types(&self, topo: &Topology, search_path: &[&str]) -> Vec<u32> {
        let mut out = self.param_types.clone();
        for info in &self.analysis.statements {
            let m = &info.model;
            let bound = bound(info, topo, search_path);
            let col_type = |c: usize| -> Option<u32> {
                let (rel, name) = bound.col(c)?;
                let Some(Relation::Citus(id)) = bound.rel(rel) else { return None };
                let t = topo.table(id)?;
                let dc = t.dist_column.as_ref().filter(|d| d.name == name).map(|d| d.ty);
                dc.or_else(|| t.columns.iter().find(|c| c.name == name).map(|c| c.ty)).map(|t| t.oid())
            };
            let mut note = |n: u32, ty: Option<u32>| {
                let idx = n as usize;
                if let (Some(ty), Some(slot)) = (ty, idx.checked_sub(1).and_then(|i| out.get_mut(i))) {
                    if *slot == 0 {
                        *slot = ty;
                    }
                } else if let Some(ty) = ty {
                    if idx > out.len() && idx < 65_536 {
                        out.resize(idx, 0);
                        if let Some(slot) = out.get_mut(idx - 1) {
                            *slot = ty;
                        }
                    }
                }
            };
            let mut stack: Vec<&Pred> = m.conjs.iter().map(|c| &c.pred).collect();
            while let Some(p) = stack.pop() {
                match p {
                    Pred::And(ps) | Pred::Or(ps) => stack.extend(ps.iter()),
                    Pred::Not(x) => stack.push(x),
                    Pred::Eq(c, ValueExpr::Slot(n)) | Pred::Ne(c, ValueExpr::Slot(n)) => note(*n, col_type(*c)),
                    Pred::In(c, vs) => {
                        for v in vs {
                            if let ValueExpr::Slot(n) = v {
                                note(*n, col_type(*c));
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let crate::analysis::model::Dml::Insert { target, columns, source: crate::analysis::model::InsertSource::Values(rows) } =
                &m.dml
            {
                if let Some(Relation::Citus(id)) = bound.rel(*target) {
                    if let Some(t) = topo.table(id) {
                        for row in rows {
                            for (i, v) in row.iter().enumerate() {
                                let name = match columns {
                                    Some(cs) => cs.get(i).map(|c| c.to_string()),
                                    None => t.columns.get(i).map(|c| c.name.clone()),
                                };
                                let ty = name.and_then(|n| t.columns.iter().find(|c| c.name == n)).map(|c| c.ty.oid());
                                if let crate::analysis::model::RowValue::Value(ValueExpr::Slot(n)) = v {
                                    note(*n, ty);
                                }
                            }
                        }
                    }
                }
            }
        }
        let base = self.analysis.literal_base as usize;
        out.truncate(base.saturating_sub(1).max(self.param_types.len()).min(out.len()));
        out
    }
}

impl Router {
    pub fn new(shape_cache_capacity: usize) -> Self {
        Router::with_options(RouterOptions { shape_cache_capacity, ..RouterOptions::default() })
    }

    pub fn with_options(o: RouterOptions) -> Self {
        Router { cache: ShapeCache::new(o.shape_cache_capacity), bulk_insert_rows: o.bulk_insert_rows }
    }

    /// (hits, misses) of the shape cache, and its current size.
    pub fn cache_stats(&self) -> (u64, u64, usize) {
        let (h, m) = self.cache.stats();
        (h, m, self.cache.len())
    }

    /// The analysis of a text (cached by shape) and the literal spans of this text.
    fn analysis_for(&self, sql: &str) -> (Arc<Analysis>, Vec<Literal>) {
        let n = normalize(sql);
        // `$1` means a literal slot when the text had no parameters, a parameter otherwise.
        let prefixed;
        let key: &str = if n.literal_base == 1 {
            &n.shape
        } else {
            prefixed = format!("{}\u{1}{}", n.literal_base, n.shape);
            &prefixed
        };
        if let Some(a) = self.cache.get(key) {
            return (a, n.literals);
        }
        let shape_id = shape_id(&n.shape);
        let mut a = analyze_statements(&n.shape, n.selects, n.hint, n.literal_base);
        a.shape_id = shape_id;
        if a.parse_error.is_some() && !n.literals.is_empty() {
            // A literal in a position where a parameter is not allowed: analyse the text itself,
            // cached under its exact text.
            let key = format!("\u{0}{sql}");
            if let Some(raw) = self.cache.get(&key) {
                return (raw, Vec::new());
            }
            let mut raw = analyze_statements(sql, n.selects, n.hint, u32::MAX);
            raw.shape_id = shape_id;
            let raw = Arc::new(raw);
            self.cache.insert(key.into(), raw.clone());
            return (raw, Vec::new());
        }
        let a = Arc::new(a);
        self.cache.insert(key.into(), a.clone());
        (a, n.literals)
    }

    /// Simple-protocol Query text. A text with several statements gets one decision: the route
    /// shared by all statements other than transaction control/SET (if they agree), else
    /// `Unknown`; `Decision::statements` has each statement's route.
    pub fn route_query(&self, sql: &str, topo: &Topology, search_path: &[&str]) -> Decision {
        self.route_query_with(sql, topo, search_path, true)
    }

    /// As `route_query`; with `explain` false the decision's `reason` and explanation notes are
    /// left empty (the route, class and analysis are the same), which is what a hot path wants.
    pub fn route_query_with(&self, sql: &str, topo: &Topology, search_path: &[&str], explain: bool) -> Decision {
        let (analysis, literals) = self.analysis_for(sql);
        let vals = Bindings {
            sql,
            literals: &literals,
            literal_base: analysis.literal_base,
            params: &[],
            formats: &[],
            param_types: &[],
            explain,
        };
        self.decide_all(analysis.clone(), vals, topo, search_path)
    }

    /// Extended protocol Parse: analyse once (param type OIDs from the Parse message, 0 = unspecified).
    pub fn prepare(&self, sql: &str, param_types: &[u32]) -> Arc<Prepared> {
        let (analysis, literals) = self.analysis_for(sql);
        Arc::new(Prepared { sql: sql.into(), literals, param_types: param_types.to_vec(), analysis })
    }

    /// Bind: parameters as raw bytes (None = NULL) and format codes per Bind semantics
    /// (none = all text, one = applies to all, n = per parameter; 0 text, 1 binary).
    pub fn route_bound(
        &self,
        prepared: &Prepared,
        params: &[Option<&[u8]>],
        formats: &[i16],
        topo: &Topology,
        search_path: &[&str],
    ) -> Decision {
        self.route_bound_with(prepared, params, formats, topo, search_path, true)
    }

    /// As `route_bound`, without building the explanation when `explain` is false.
    pub fn route_bound_with(
        &self,
        prepared: &Prepared,
        params: &[Option<&[u8]>],
        formats: &[i16],
        topo: &Topology,
        search_path: &[&str],
        explain: bool,
    ) -> Decision {
        let vals = Bindings {
            sql: &prepared.sql,
            literals: &prepared.literals,
            literal_base: prepared.analysis.literal_base,
            params,
            formats,
            param_types: &prepared.param_types,
            explain,
        };
        self.decide_all(prepared.analysis.clone(), vals, topo, search_path)
    }

    fn decide_all(&self, analysis: Arc<Analysis>, vals: Bindings<'_>, topo: &Topology, search_path: &[&str]) -> Decision {
        if let [only] = analysis.statements.as_slice() {
            // The common case: nothing to combine, so the outcome is moved, not cloned.
            let o = decide(only, topo, search_path, vals);
            let class = Class::of(only, &o.route, self.bulk_insert_rows);
            return Decision { route: o.route, class, reason: o.reason, statements: Vec::new(), analysis };
        }
        let outcomes: Vec<Outcome> = analysis.statements.iter().map(|s| decide(s, topo, search_path, vals)).collect();
        let significant: Vec<usize> = (0..outcomes.len()).filter(|i| outcomes.get(*i).is_some_and(|o| o.route != Route::Utility)).collect();
        let (route, reason, lead) = match (outcomes.as_slice(), significant.as_slice()) {
            ([], _) => (Route::Unknown { reason: "empty query".into() }, "empty query".to_string(), None),
            ([one], _) => (one.route.clone(), one.reason.clone(), Some(0)),
            (_, []) => (Route::Utility, "transaction control / utility statements".to_string(), Some(0)),
            (all, [i]) => all.get(*i).map_or((Route::Utility, String::new(), None), |o| (o.route.clone(), o.reason.clone(), Some(*i))),
            (all, many) => {
                let first = many.first().and_then(|i| all.get(*i));
                let same = first.is_some_and(|f| many.iter().all(|i| all.get(*i).is_some_and(|o| o.route == f.route)));
                match (same, first) {
                    (true, Some(f)) => (f.route.clone(), f.reason.clone(), many.first().copied()),
                    _ => {
                        let r = "several statements with different routes".to_string();
                        (Route::Unknown { reason: r.clone() }, r, many.first().copied())
                    }
                }
            }
        };
        let class = lead.and_then(|i| analysis.statements.get(i)).map_or(Class::Other, |s| Class::of(s, &route, self.bulk_insert_rows));
        let statements = if outcomes.len() > 1 { outcomes.into_iter().map(|o| o.route).collect() } else { Vec::new() };
        Decision { route, class, reason, statements, analysis }
    }
}
