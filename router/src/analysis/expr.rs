//! Expressions: predicates the pruner understands, constant value expressions, column references,
//! and a walk that finds subqueries (their own regions) and function calls everywhere else.

use super::builder::{fold, name_parts, Builder};
use super::model::{ArithOp, CastTarget, ColId, Pred, RegionId, ScopeId, ValueExpr};
use crate::types::PgType;
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, UnaryOperator, Value,
};

/// A cast target type from the AST (unknown names map to `Other(0)`).
pub(crate) fn cast_target(dt: &DataType) -> CastTarget {
    let text = dt.to_string();
    let (base, array) = match text.strip_suffix("[]") {
        Some(b) => (b.to_string(), true),
        None => (text, false),
    };
    CastTarget { ty: PgType::from_sql_name(&base).unwrap_or(PgType::Other(0)), array }
}

fn placeholder_number(p: &str) -> Option<u32> {
    p.strip_prefix('$')?.parse().ok()
}

impl<'a> Builder<'a> {
    /// A plain column reference (through parentheses; casts on the column are not stripped,
    /// exactly like Citus, which does not prune `user_id::text = '42'`).
    pub fn col_of(&mut self, e: &Expr, scope: ScopeId) -> Option<ColId> {
        match e {
            Expr::Identifier(id) => Some(self.bare_col(scope, fold(id), None)),
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<Box<str>> = ids.iter().map(fold).collect();
                let (name, qual) = parts.split_last()?;
                Some(self.qualified_col(scope, qual, name.clone()))
            }
            Expr::Nested(x) => self.col_of(x, scope),
            _ => None,
        }
    }

    /// A constant expression Citus can evaluate before pruning (literal, parameter, cast,
    /// unary minus, integer arithmetic, abs(), ARRAY[…]).
    pub fn value_of(&self, e: &Expr) -> Option<ValueExpr> {
        Some(match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => ValueExpr::Number(n.as_str().into()),
                Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) | Value::NationalStringLiteral(s) => {
                    ValueExpr::String(s.as_str().into())
                }
                Value::DollarQuotedString(d) => ValueExpr::String(d.value.as_str().into()),
                Value::Placeholder(p) => ValueExpr::Slot(placeholder_number(p)?),
                Value::Null => ValueExpr::Null,
                Value::Boolean(b) => ValueExpr::Bool(*b),
                _ => return None,
            },
            Expr::Nested(x) => self.value_of(x)?,
            Expr::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr, data_type, format: None } => {
                ValueExpr::Cast(Box::new(self.value_of(expr)?), cast_target(data_type))
            }
            Expr::TypedString(ts) => {
                let inner = match &ts.value.value {
                    Value::SingleQuotedString(s) => ValueExpr::String(s.as_str().into()),
                    _ => return None,
                };
                ValueExpr::Cast(Box::new(inner), cast_target(&ts.data_type))
            }
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => ValueExpr::Neg(Box::new(self.value_of(expr)?)),
            Expr::UnaryOp { op: UnaryOperator::Plus, expr } => self.value_of(expr)?,
            Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::Plus => ArithOp::Add,
                    BinaryOperator::Minus => ArithOp::Sub,
                    BinaryOperator::Multiply => ArithOp::Mul,
                    _ => return None,
                };
                ValueExpr::Arith(op, Box::new(self.value_of(left)?), Box::new(self.value_of(right)?))
            }
            Expr::Function(f) if f.over.is_none() && f.filter.is_none() => {
                let name = name_parts(&f.name)?;
                if name.last().map(|n| &**n) != Some("abs") {
                    return None;
                }
                let FunctionArguments::List(list) = &f.args else { return None };
                match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] => ValueExpr::Abs(Box::new(self.value_of(x)?)),
                    _ => return None,
                }
            }
            Expr::Array(arr) => ValueExpr::Array(arr.elem.iter().map(|x| self.value_of(x)).collect::<Option<_>>()?),
            _ => return None,
        })
    }

    /// `col = value` in either order; `col = col`; otherwise walk and give up on the predicate.
    fn comparison(&mut self, l: &'a Expr, r: &'a Expr, eq: bool, scope: ScopeId, region: RegionId) -> Pred {
        let lc = self.col_of(l, scope);
        let rc = self.col_of(r, scope);
        match (lc, rc) {
            (Some(a), Some(b)) if eq => Pred::ColEq(a, b),
            (Some(_), Some(_)) => Pred::Opaque,
            (Some(a), None) => match self.value_of(r) {
                Some(v) if eq => Pred::Eq(a, v),
                Some(v) => Pred::Ne(a, v),
                None => {
                    self.walk_expr(r, scope, region);
                    Pred::Opaque
                }
            },
            (None, Some(b)) => match self.value_of(l) {
                Some(v) if eq => Pred::Eq(b, v),
                Some(v) => Pred::Ne(b, v),
                None => {
                    self.walk_expr(l, scope, region);
                    Pred::Opaque
                }
            },
            (None, None) => {
                self.walk_expr(l, scope, region);
                self.walk_expr(r, scope, region);
                // NULL compared with anything is NULL (PostgreSQL folds it to a constant).
                let is_null = |e: &Expr| matches!(self.value_of(e), Some(ValueExpr::Null));
                if is_null(l) || is_null(r) {
                    Pred::Const(None)
                } else {
                    Pred::Opaque
                }
            }
        }
    }

    /// A predicate tree for pruning. Anything not understood is `Opaque` (prunes nothing).
    pub fn pred(&mut self, e: &'a Expr, scope: ScopeId, region: RegionId) -> Pred {
        match e {
            Expr::Nested(x) => self.pred(x, scope, region),
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                Pred::And(vec![self.pred(left, scope, region), self.pred(right, scope, region)])
            }
            Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
                Pred::Or(vec![self.pred(left, scope, region), self.pred(right, scope, region)])
            }
            Expr::UnaryOp { op: UnaryOperator::Not, expr } => Pred::Not(Box::new(self.pred(expr, scope, region))),
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => self.comparison(left, right, true, scope, region),
            Expr::BinaryOp { left, op: BinaryOperator::NotEq, right } => self.comparison(left, right, false, scope, region),
            Expr::In { expr, target: InTarget::List(list), negated: false, .. } => {
                let values: Option<Vec<ValueExpr>> = list.iter().map(|x| self.value_of(x)).collect();
                match (self.col_of(expr, scope), values) {
                    (Some(c), Some(v)) => Pred::In(c, v),
                    _ => {
                        self.walk_expr(e, scope, region);
                        Pred::Opaque
                    }
                }
            }
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } => match (self.col_of(left, scope), self.value_of(right)) {
                (Some(c), Some(v)) => Pred::AnyEq(c, v),
                _ => {
                    self.walk_expr(e, scope, region);
                    Pred::Opaque
                }
            },
            Expr::Value(v) => match &v.value {
                Value::Boolean(b) => Pred::Const(Some(*b)),
                Value::Null => Pred::Const(None),
                _ => Pred::Opaque,
            },
            _ => {
                self.walk_expr(e, scope, region);
                Pred::Opaque
            }
        }
    }

    pub fn walk_function_arg(&mut self, a: &'a FunctionArg, scope: ScopeId, region: RegionId) {
        let (FunctionArg::Unnamed(arg) | FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. }) = a;
        if let FunctionArgExpr::Expr(x) = arg {
            self.walk_expr(x, scope, region);
        }
    }

    fn sub(&mut self, q: &'a sqlparser::ast::Query, scope: ScopeId) {
        let r = self.new_region();
        self.query(q, Some(scope), r);
    }

    /// Visit everything below `e`: subqueries get their own region (PostgreSQL plans them as
    /// SubPlans, so nothing propagates across), function names are recorded.
    pub fn walk_expr(&mut self, e: &'a Expr, scope: ScopeId, region: RegionId) {
        match e {
            Expr::Subquery(q) => self.sub(q, scope),
            Expr::Exists { subquery, .. } => self.sub(subquery, scope),
            Expr::In { expr, target, .. } => {
                self.walk_expr(expr, scope, region);
                match target {
                    InTarget::List(l) => l.iter().for_each(|x| self.walk_expr(x, scope, region)),
                    InTarget::Subquery(q) => self.sub(q, scope),
                    InTarget::Unnest(x) => self.walk_expr(x, scope, region),
                    InTarget::Table { .. } => self.giveup("IN TABLE is not PostgreSQL"),
                }
            }
            Expr::Function(f) => {
                if let Some(n) = name_parts(&f.name).and_then(|p| p.last().cloned()) {
                    self.info.function(&n);
                }
                match &f.args {
                    FunctionArguments::List(list) => list.args.iter().for_each(|a| self.walk_function_arg(a, scope, region)),
                    FunctionArguments::Subquery(q) => self.sub(q, scope),
                    FunctionArguments::None => {}
                }
                if let Some(x) = &f.filter {
                    self.walk_expr(x, scope, region);
                }
                for o in &f.within_group {
                    self.walk_expr(&o.expr, scope, region);
                }
            }
            Expr::BinaryOp { left, right, .. }
            | Expr::AnyOp { left, right, .. }
            | Expr::AllOp { left, right, .. }
            | Expr::IsDistinctFrom(left, right)
            | Expr::IsNotDistinctFrom(left, right) => {
                self.walk_expr(left, scope, region);
                self.walk_expr(right, scope, region);
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } | Expr::SimilarTo { expr, pattern, .. } => {
                self.walk_expr(expr, scope, region);
                self.walk_expr(pattern, scope, region);
            }
            Expr::Between { expr, low, high, .. } => {
                self.walk_expr(expr, scope, region);
                self.walk_expr(low, scope, region);
                self.walk_expr(high, scope, region);
            }
            Expr::UnaryOp { expr, .. }
            | Expr::Nested(expr)
            | Expr::Cast { expr, .. }
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsFalse(expr)
            | Expr::IsNotTrue(expr)
            | Expr::IsNotFalse(expr)
            | Expr::IsUnknown(expr)
            | Expr::IsNotUnknown(expr)
            | Expr::Collate { expr, .. }
            | Expr::Extract { expr, .. }
            | Expr::Ceil { expr, .. }
            | Expr::Floor { expr, .. } => self.walk_expr(expr, scope, region),
            Expr::AtTimeZone { timestamp, time_zone } => {
                self.walk_expr(timestamp, scope, region);
                self.walk_expr(time_zone, scope, region);
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                if let Some(o) = operand {
                    self.walk_expr(o, scope, region);
                }
                for c in conditions {
                    self.walk_expr(&c.condition, scope, region);
                    self.walk_expr(&c.result, scope, region);
                }
                if let Some(x) = else_result {
                    self.walk_expr(x, scope, region);
                }
            }
            Expr::Tuple(items) => items.iter().for_each(|x| self.walk_expr(x, scope, region)),
            Expr::Array(a) => a.elem.iter().for_each(|x| self.walk_expr(x, scope, region)),
            Expr::Substring { expr, substring_from, substring_for, .. } => {
                self.walk_expr(expr, scope, region);
                if let Some(x) = substring_from {
                    self.walk_expr(x, scope, region);
                }
                if let Some(x) = substring_for {
                    self.walk_expr(x, scope, region);
                }
            }
            Expr::Position { expr, r#in } => {
                self.walk_expr(expr, scope, region);
                self.walk_expr(r#in, scope, region);
            }
            Expr::Trim { expr, trim_what, .. } => {
                self.walk_expr(expr, scope, region);
                if let Some(x) = trim_what {
                    self.walk_expr(x, scope, region);
                }
            }
            Expr::CompoundFieldAccess { root, .. } => self.walk_expr(root, scope, region),
            // Registered so that outer references mark their sublink as correlated.
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                self.col_of(e, scope);
            }
            // Leaves, and forms whose subqueries (if any) the SELECT-count guard catches.
            _ => {}
        }
    }
}
