//! INSERT, UPDATE and DELETE: the target relation, its rows or assignments, and the WHERE.

use super::builder::{fold, name_parts, Builder};
use super::model::{Dml, InsertSource, RelSource, RowValue, SetValue};
use super::query::OutSrc;
use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Insert, OnConflictAction, OnInsert, SelectItem, SetExpr, TableFactor, TableObject, Update,
    UpdateTableFromKind,
};

impl<'a> Builder<'a> {
    fn target(&mut self, parts: Option<Vec<sqlparser::ast::Ident>>, alias: Option<Box<str>>, scope: usize) -> Option<usize> {
        let parts: Vec<Box<str>> = parts?.iter().map(fold).collect();
        let (schema, name) = match parts.as_slice() {
            [n] => (None, n.clone()),
            [s, n] | [_, s, n] => (Some(s.clone()), n.clone()),
            _ => return None,
        };
        self.info.table(schema.as_deref(), &name);
        let visible = alias.unwrap_or_else(|| name.clone());
        Some(self.add_rel(RelSource::Base { schema, name }, 0, Some((scope, visible))))
    }

    fn returning(&mut self, items: &'a Option<Vec<SelectItem>>, scope: usize) {
        for item in items.iter().flatten() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                self.walk_expr(e, scope, 0);
            }
        }
    }

    pub fn insert(&mut self, ins: &'a Insert) {
        let scope = self.new_scope(None);
        let TableObject::TableName(name) = &ins.table else {
            self.giveup("INSERT into a table function");
            return;
        };
        let ids = name.0.iter().map(|p| p.as_ident().cloned()).collect::<Option<Vec<_>>>();
        let alias = ins.table_alias.as_ref().map(|a| fold(&a.alias));
        let Some(target) = self.target(ids, alias, scope) else {
            self.giveup("unsupported INSERT target");
            return;
        };
        let columns = if ins.columns.is_empty() {
            None
        } else {
            Some(ins.columns.iter().filter_map(|c| name_parts(c).and_then(|p| p.last().cloned())).collect())
        };
        let source = match ins.source.as_deref() {
            None => InsertSource::DefaultValues,
            Some(q) => match &*q.body {
                SetExpr::Values(v) if q.with.is_none() && q.order_by.is_none() && q.limit_clause.is_none() => {
                    let rows = v.rows.iter().map(|row| row.iter().map(|e| self.row_value(e, scope)).collect()).collect();
                    InsertSource::Values(rows)
                }
                _ => {
                    let r = self.new_region();
                    let out = self.query(q, None, r);
                    match out.outputs {
                        Some(o) => {
                            InsertSource::Select(o.into_iter().map(|(_, s)| if let OutSrc::Col(c) = s { Some(c) } else { None }).collect())
                        }
                        None => {
                            self.giveup("INSERT … SELECT * (output columns not listed)");
                            InsertSource::Select(Vec::new())
                        }
                    }
                }
            },
        };
        if let Some(OnInsert::OnConflict(oc)) = &ins.on {
            if let OnConflictAction::DoUpdate(du) = &oc.action {
                for a in &du.assignments {
                    self.walk_expr(&a.value, scope, 0);
                }
                if let Some(s) = &du.selection {
                    self.walk_expr(s, scope, 0);
                }
            }
        }
        self.returning(&ins.returning, scope);
        self.m.dml = Dml::Insert { target, columns, source };
    }

    fn row_value(&mut self, e: &'a Expr, scope: usize) -> RowValue {
        if let Expr::Identifier(id) = e {
            if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") {
                return RowValue::Default;
            }
        }
        match self.value_of(e) {
            Some(v) => RowValue::Value(v),
            None => {
                self.walk_expr(e, scope, 0);
                RowValue::Computed
            }
        }
    }

    pub fn update(&mut self, u: &'a Update) {
        let scope = self.new_scope(None);
        let TableFactor::Table { name, alias, .. } = &u.table.relation else {
            self.giveup("unsupported UPDATE target");
            return;
        };
        let ids = name.0.iter().map(|p| p.as_ident().cloned()).collect::<Option<Vec<_>>>();
        let Some(target) = self.target(ids, alias.as_ref().map(|a| fold(&a.name)), scope) else {
            self.giveup("unsupported UPDATE target");
            return;
        };
        if let Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) = &u.from {
            for twj in f {
                self.walk_from_item(twj, scope, 0);
            }
        }
        if let Some(w) = &u.selection {
            self.conjuncts(w, scope, 0, None, true);
        }
        let mut sets = Vec::new();
        for a in &u.assignments {
            let names: Vec<Box<str>> = match &a.target {
                AssignmentTarget::ColumnName(n) => name_parts(n).and_then(|p| p.last().cloned()).into_iter().collect(),
                AssignmentTarget::Tuple(ns) => ns.iter().filter_map(|n| name_parts(n).and_then(|p| p.last().cloned())).collect(),
            };
            let value = if names.len() == 1 {
                if let Some(c) = self.col_of(&a.value, scope) {
                    SetValue::Col(c)
                } else if let Some(v) = self.value_of(&a.value) {
                    SetValue::Value(v)
                } else {
                    self.walk_expr(&a.value, scope, 0);
                    SetValue::Computed
                }
            } else {
                self.walk_expr(&a.value, scope, 0);
                SetValue::Computed
            };
            for n in names {
                sets.push((n, value.clone()));
            }
        }
        self.returning(&u.returning, scope);
        self.m.dml = Dml::Update { target, sets };
    }

    pub fn delete(&mut self, d: &'a Delete) {
        let scope = self.new_scope(None);
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
        let Some(first) = from.first() else {
            self.giveup("DELETE without a table");
            return;
        };
        let TableFactor::Table { name, alias, .. } = &first.relation else {
            self.giveup("unsupported DELETE target");
            return;
        };
        let ids = name.0.iter().map(|p| p.as_ident().cloned()).collect::<Option<Vec<_>>>();
        let Some(target) = self.target(ids, alias.as_ref().map(|a| fold(&a.name)), scope) else {
            self.giveup("unsupported DELETE target");
            return;
        };
        for twj in d.using.iter().flatten() {
            self.walk_from_item(twj, scope, 0);
        }
        if let Some(w) = &d.selection {
            self.conjuncts(w, scope, 0, None, true);
        }
        self.returning(&d.returning, scope);
        self.m.dml = Dml::Delete { target };
    }
}
