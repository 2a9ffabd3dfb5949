//! Per-relation restriction on its distribution key: the boolean tree of its region's conjuncts
//! (AND → intersection, OR → union, NOT pushed down) and equivalence-class constants (join
//! equalities and links through subqueries carry `key = const` across relations, as PostgreSQL's
//! equivalence classes do before Citus prunes).

use super::resolve::Bound;
use super::values::Bindings;
use crate::analysis::model::{Conj, LinkTarget, Model, Pred, RelId, ValueExpr};
use crate::types::{Datum, PgType};

/// The values a key may take: every value, or a finite set (empty = contradiction).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeySet {
    All,
    Values(Vec<Datum>),
}

impl KeySet {
    fn empty() -> Self {
        KeySet::Values(Vec::new())
    }
    fn has_unhashable(v: &[Datum]) -> bool {
        v.contains(&Datum::Unhashable)
    }
    pub fn intersect(self, other: KeySet) -> KeySet {
        match (self, other) {
            (KeySet::All, x) | (x, KeySet::All) => x,
            (KeySet::Values(a), KeySet::Values(b)) => {
                // Unhashable values cannot be compared: keep a superset (the smaller side).
                if Self::has_unhashable(&a) || Self::has_unhashable(&b) {
                    return KeySet::Values(if a.len() <= b.len() { a } else { b });
                }
                KeySet::Values(a.into_iter().filter(|x| b.contains(x)).collect())
            }
        }
    }
    pub fn union(self, other: KeySet) -> KeySet {
        match (self, other) {
            (KeySet::All, _) | (_, KeySet::All) => KeySet::All,
            (KeySet::Values(mut a), KeySet::Values(b)) => {
                for x in b {
                    if x == Datum::Unhashable || !a.contains(&x) {
                        a.push(x);
                    }
                }
                KeySet::Values(a)
            }
        }
    }
}

pub(crate) struct Ctx<'a, 'm> {
    pub model: &'m Model,
    pub bound: &'a Bound<'m>,
    pub vals: Bindings<'a>,
}

impl Ctx<'_, '_> {
    pub fn conds_ok(&self, conds: &[usize]) -> bool {
        conds.iter().all(|s| !self.bound.correlated(*s))
    }

    fn is_key(&self, col: usize, rel: RelId, key: &str) -> bool {
        matches!(self.bound.col(col), Some((r, c)) if r == rel && c == key)
    }

    fn single(&self, v: &ValueExpr, ty: PgType, neg: bool) -> KeySet {
        match self.vals.key_value(v, ty) {
            Ok(None) => KeySet::empty(),
            Ok(Some(d)) if !neg => KeySet::Values(vec![d]),
            _ => KeySet::All,
        }
    }

    fn eval(&self, p: &Pred, rel: RelId, key: &str, ty: PgType, neg: bool) -> KeySet {
        let fold = |ps: &[Pred], and: bool| {
            let mut it = ps.iter().map(|x| self.eval(x, rel, key, ty, neg));
            let first = it.next().unwrap_or(KeySet::All);
            it.fold(first, |acc, x| if and { acc.intersect(x) } else { acc.union(x) })
        };
        match p {
            Pred::And(ps) => fold(ps, !neg),
            Pred::Or(ps) => fold(ps, neg),
            Pred::Not(x) => self.eval(x, rel, key, ty, !neg),
            Pred::Eq(c, v) if self.is_key(*c, rel, key) => self.single(v, ty, neg),
            Pred::Ne(c, v) if self.is_key(*c, rel, key) => match self.vals.key_value(v, ty) {
                Ok(None) => KeySet::empty(),
                Ok(Some(d)) if neg => KeySet::Values(vec![d]),
                _ => KeySet::All,
            },
            // Comparing any column with a literal NULL folds to NULL.
            Pred::Eq(_, ValueExpr::Null) | Pred::Ne(_, ValueExpr::Null) => KeySet::empty(),
            Pred::In(c, vs) if self.is_key(*c, rel, key) && !neg => {
                let mut out = KeySet::empty();
                for v in vs {
                    match self.vals.key_value(v, ty) {
                        Ok(None) => {}
                        Ok(Some(d)) => out = out.union(KeySet::Values(vec![d])),
                        Err(_) => return KeySet::All,
                    }
                }
                out
            }
            Pred::AnyEq(c, v) if self.is_key(*c, rel, key) && !neg => match self.vals.key_array(v, ty) {
                Ok(None) => KeySet::empty(),
                Ok(Some(ds)) => ds.into_iter().fold(KeySet::empty(), |acc, d| acc.union(KeySet::Values(vec![d]))),
                Err(_) => KeySet::All,
            },
            Pred::Const(Some(b)) => {
                if *b != neg {
                    KeySet::All
                } else {
                    KeySet::empty()
                }
            }
            Pred::Const(None) => KeySet::empty(),
            _ => KeySet::All,
        }
    }

    fn applies(&self, c: &Conj, rel: RelId) -> bool {
        let region = self.model.rels.get(rel).map(|r| r.region);
        Some(c.region) == region && c.only.is_none_or(|(a, b)| a <= rel && rel < b) && self.conds_ok(&c.unless_correlated)
    }

    /// The restriction of `rel`'s key from its own conjuncts.
    pub fn own(&self, rel: RelId, key: &str, ty: PgType) -> KeySet {
        let mut ks = KeySet::All;
        for c in &self.model.conjs {
            if self.applies(c, rel) {
                ks = ks.intersect(self.eval(&c.pred, rel, key, ty, false));
            }
        }
        ks
    }
}

/// Union-find over (relation, column) with constants and one-way edges.
#[derive(Default)]
pub(crate) struct Classes<'m> {
    nodes: Vec<(RelId, &'m str)>,
    parent: Vec<usize>,
    consts: Vec<Vec<&'m ValueExpr>>,
    directed: Vec<(usize, usize)>,
}

impl<'m> Classes<'m> {
    fn node(&mut self, n: (RelId, &'m str)) -> usize {
        if let Some(i) = self.nodes.iter().position(|x| *x == n) {
            return i;
        }
        self.nodes.push(n);
        self.parent.push(self.parent.len());
        self.consts.push(Vec::new());
        self.nodes.len() - 1
    }
    fn find(&self, mut i: usize) -> usize {
        let mut guard = 0;
        while let Some(&p) = self.parent.get(i) {
            if p == i || guard > self.parent.len() {
                break;
            }
            i = p;
            guard += 1;
        }
        i
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            if let Some(p) = self.parent.get_mut(ra) {
                *p = rb;
            }
        }
    }
    /// Class id of a column, if it takes part in any equivalence.
    pub fn class_of(&self, n: (RelId, &str)) -> Option<usize> {
        self.nodes.iter().position(|x| x.0 == n.0 && x.1 == n.1).map(|i| self.find(i))
    }
    /// Constants equal to the column: from its class, plus those pushed along one-way edges.
    pub fn constants(&self, n: (RelId, &str)) -> Vec<&'m ValueExpr> {
        let Some(i) = self.class_of(n) else { return Vec::new() };
        let mut classes = vec![i];
        // Follow one-way edges backwards to the classes that feed this one.
        let mut k = 0;
        while let Some(&c) = classes.get(k) {
            for (from, to) in &self.directed {
                let (f, t) = (self.find(*from), self.find(*to));
                if t == c && !classes.contains(&f) {
                    classes.push(f);
                }
            }
            k += 1;
        }
        let mut out = Vec::new();
        for (idx, cs) in self.consts.iter().enumerate() {
            if classes.contains(&self.find(idx)) {
                out.extend(cs.iter().copied());
            }
        }
        out
    }

    pub fn build(ctx: &Ctx<'_, 'm>) -> Classes<'m> {
        let m = ctx.model;
        let mut cl = Classes::default();
        // Without column equalities or links each class is one column whose constants are its
        // own top-level `= value` conjuncts, which `Ctx::own` applies already: nothing to add.
        if m.links.is_empty() && !m.conjs.iter().any(|c| matches!(c.pred, Pred::ColEq(..))) {
            return cl;
        }
        let region_of = |r: RelId| m.rels.get(r).map(|x| x.region);
        for c in &m.conjs {
            if !ctx.conds_ok(&c.unless_correlated) {
                continue;
            }
            let inside = |r: RelId| c.only.is_none_or(|(a, b)| a <= r && r < b);
            match &c.pred {
                Pred::ColEq(a, b) => {
                    let (Some(x), Some(y)) = (ctx.bound.col(*a), ctx.bound.col(*b)) else { continue };
                    if region_of(x.0) != Some(c.region) || region_of(y.0) != Some(c.region) {
                        continue;
                    }
                    let (nx, ny) = (cl.node(x), cl.node(y));
                    match (c.only.is_none(), inside(x.0), inside(y.0)) {
                        (true, _, _) | (false, true, true) => cl.union(nx, ny),
                        (false, false, true) => cl.directed.push((nx, ny)),
                        (false, true, false) => cl.directed.push((ny, nx)),
                        _ => {}
                    }
                }
                Pred::Eq(a, v) => {
                    let Some(x) = ctx.bound.col(*a) else { continue };
                    if region_of(x.0) == Some(c.region) && inside(x.0) {
                        let n = cl.node(x);
                        if let Some(cs) = cl.consts.get_mut(n) {
                            cs.push(v);
                        }
                    }
                }
                _ => {}
            }
        }
        for l in &m.links {
            if !ctx.conds_ok(&l.unless_correlated) {
                continue;
            }
            if let LinkTarget::Star(inner) = &l.target {
                let names: Vec<&'m str> = ctx.bound.cols().filter(|(r, _)| *r == l.rel).map(|(_, n)| n).collect();
                for n in names {
                    let (o, i) = (cl.node((l.rel, n)), cl.node((*inner, n)));
                    if l.both_ways {
                        cl.union(o, i);
                    } else {
                        cl.directed.push((o, i));
                    }
                }
                continue;
            }
            let outer = cl.node((l.rel, &l.column));
            match &l.target {
                LinkTarget::Col(c) => {
                    let Some(inner) = ctx.bound.col(*c) else { continue };
                    let inner = cl.node(inner);
                    if l.both_ways {
                        cl.union(outer, inner);
                    } else {
                        cl.directed.push((outer, inner));
                    }
                }
                LinkTarget::Value(v) => {
                    if let Some(cs) = cl.consts.get_mut(outer) {
                        cs.push(v);
                    }
                }
                LinkTarget::Star(_) => {}
            }
        }
        cl
    }
}

/// Whole-region contradictions: a top-level FALSE/NULL conjunct, or two different constants in
/// one equivalence class (PostgreSQL turns both into a gating `false`).
pub(crate) fn region_false(ctx: &Ctx<'_, '_>, region: usize) -> bool {
    ctx.model.conjs.iter().any(|c| {
        c.region == region && c.only.is_none() && ctx.conds_ok(&c.unless_correlated) && matches!(c.pred, Pred::Const(Some(false) | None))
    })
}
