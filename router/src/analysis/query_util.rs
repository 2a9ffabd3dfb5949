//! Small helpers of the query walk: splitting conjunctions, output names, CTE reference counts.

use super::builder::{fold, name_parts};
use super::model::RelId;
use sqlparser::ast::{Expr, Query, SelectItem, SetExpr};

/// `SELECT * FROM one_relation …`: the relation that supplies every output column.
pub(crate) fn star_source(q: &Query, members: Option<&[(Box<str>, RelId)]>) -> Option<RelId> {
    let SetExpr::Select(s) = &*q.body else { return None };
    match (s.projection.as_slice(), members) {
        ([SelectItem::Wildcard(_)], Some([(_, rel)])) => Some(*rel),
        _ => None,
    }
}

/// Top-level AND parts (through parentheses).
pub(crate) fn split_and(e: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(x) = stack.pop() {
        match x {
            Expr::BinaryOp { left, op: sqlparser::ast::BinaryOperator::And, right } => {
                stack.push(right);
                stack.push(left);
            }
            Expr::Nested(inner) if matches!(**inner, Expr::BinaryOp { op: sqlparser::ast::BinaryOperator::And, .. }) => stack.push(inner),
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    let mut found = false;
    super::shape_of::visit_functions(e, &mut |name, _| found |= super::functions::is_aggregate(name));
    found
}

pub(crate) fn count_word(text: &str, word: &str) -> usize {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    text.match_indices(word)
        .filter(|(i, _)| {
            let before = i.checked_sub(1).and_then(|p| bytes.get(p)).is_none_or(|b| !is_ident(*b));
            let after = bytes.get(i + word.len()).is_none_or(|b| !is_ident(*b));
            before && after
        })
        .count()
}

/// PostgreSQL's default output column name.
pub(crate) fn output_name(e: &Expr) -> Box<str> {
    match e {
        Expr::Identifier(id) => fold(id),
        Expr::CompoundIdentifier(ids) => ids.last().map(fold).unwrap_or_else(|| "?column?".into()),
        Expr::Nested(x) => output_name(x),
        Expr::Cast { expr, .. } => output_name(expr),
        Expr::Function(f) => name_parts(&f.name).and_then(|p| p.last().cloned()).unwrap_or_else(|| "?column?".into()),
        _ => "?column?".into(),
    }
}
