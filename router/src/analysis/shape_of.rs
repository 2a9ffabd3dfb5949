//! Structural tests on queries: whether PostgreSQL pulls a subquery up (flattens it) or can push
//! quals into it, and a visitor over the function calls of an expression.

use super::builder::name_parts;
use super::functions::{is_aggregate, is_deterministic};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Query, SelectItem, SetExpr};

fn select_of(q: &Query) -> Option<&sqlparser::ast::Select> {
    match &*q.body {
        SetExpr::Select(s) => Some(s),
        _ => None,
    }
}

fn projection_calls(s: &sqlparser::ast::Select) -> (bool, bool, bool) {
    let (mut agg, mut window, mut volatile) = (false, false, false);
    for item in &s.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            visit_functions(e, &mut |name, over| {
                agg |= is_aggregate(name);
                window |= over;
                volatile |= !is_deterministic(name);
            });
        }
    }
    (agg, window, volatile)
}

/// A subquery PostgreSQL pulls up into its parent (`is_simple_subquery`).
pub fn is_simple(q: &Query) -> bool {
    let Some(s) = select_of(q) else { return false };
    let grouped = match &s.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(e, _) => !e.is_empty(),
    };
    let (agg, window, volatile) = projection_calls(s);
    q.with.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && q.locks.is_empty()
        && s.distinct.is_none()
        && !grouped
        && s.having.is_none()
        && !agg
        && !window
        && !volatile
}

/// Quals on output columns may be pushed into this subquery (`subquery_is_pushdown_safe`).
pub fn pushdown_ok(q: &Query) -> bool {
    let Some(s) = select_of(q) else { return false };
    let (_, window, volatile) = projection_calls(s);
    let distinct_on = matches!(s.distinct, Some(sqlparser::ast::Distinct::On(_)));
    q.limit_clause.is_none() && q.fetch.is_none() && !window && !volatile && !distinct_on
}

/// Calls `f(name, has_over)` for each function call in `e` (not descending into subqueries).
pub fn visit_functions(e: &Expr, f: &mut dyn FnMut(&str, bool)) {
    match e {
        Expr::Function(func) => {
            if let Some(name) = name_parts(&func.name).and_then(|p| p.last().cloned()) {
                f(&name, func.over.is_some());
            }
            if let FunctionArguments::List(list) = &func.args {
                for a in &list.args {
                    let (FunctionArg::Unnamed(arg) | FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. }) = a;
                    if let FunctionArgExpr::Expr(x) = arg {
                        visit_functions(x, f);
                    }
                }
            }
        }
        Expr::BinaryOp { left, right, .. } => {
            visit_functions(left, f);
            visit_functions(right, f);
        }
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => visit_functions(expr, f),
        Expr::Case { operand, conditions, else_result, .. } => {
            if let Some(o) = operand {
                visit_functions(o, f);
            }
            for c in conditions {
                visit_functions(&c.condition, f);
                visit_functions(&c.result, f);
            }
            if let Some(x) = else_result {
                visit_functions(x, f);
            }
        }
        _ => {}
    }
}
