//! One statement at a time: its kind, the walk that builds its model, and the class facts.

use super::builder::{name_parts, Builder};
use super::functions::{changes_metadata, is_aggregate, is_deterministic};
use super::model::Model;
use super::shape_of::visit_functions;
use super::{Analysis, CacheHint, ShapeFacts, StatementInfo, StatementKind, TxControl};
use sqlparser::ast::{BinaryOperator, CopySource, Expr, GroupByExpr, Query, SelectItem, Set, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Parse and analyse a (shape) text. `lexer_selects` is the number of SELECT keywords the
/// normalizer saw: if the walk visited fewer, some expression form hid a subquery from it, and
/// the statement is reported as unknown rather than routed on partial knowledge.
pub(crate) fn analyze_statements(sql: &str, lexer_selects: usize, cache_hint: Option<CacheHint>, literal_base: u32) -> Analysis {
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql);
    let stmts = match parsed {
        Ok(s) => s,
        Err(e) => {
            let first_word = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let model = Model { giveup: Some(format!("sqlparser cannot parse it: {e}")), ..Model::default() };
            let info = empty_info(StatementKind::Unparsed { first_word }, model);
            return Analysis { statements: vec![info], cache_hint, parse_error: Some(e.to_string()), literal_base, shape_id: 0 };
        }
    };
    let mut statements = Vec::with_capacity(stmts.len());
    let mut seen = 0;
    for s in &stmts {
        let (info, n) = analyze_one(s);
        seen += n;
        statements.push(info);
    }
    if seen < lexer_selects {
        for s in statements.iter_mut().filter(|s| matches!(s.kind, StatementKind::Read | StatementKind::Write)) {
            s.model.giveup.get_or_insert_with(|| "a subquery sits in an expression form the analyser does not follow".into());
        }
    }
    Analysis { statements, cache_hint, parse_error: None, literal_base, shape_id: 0 }
}

fn empty_info(kind: StatementKind, model: Model) -> StatementInfo {
    StatementInfo {
        kind,
        tables: Vec::new(),
        functions: Vec::new(),
        volatile: false,
        locking: false,
        touches_temp: false,
        touches_catalog: false,
        changes_metadata: false,
        facts: ShapeFacts::default(),
        model,
        bindings: Default::default(),
    }
}

fn set_kind(set: &Set) -> StatementKind {
    match set {
        Set::SingleAssignment { scope, variable, values, .. } => StatementKind::Set {
            name: variable.to_string().to_ascii_lowercase(),
            value: values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
            local: matches!(scope, Some(sqlparser::ast::ContextModifier::Local)),
        },
        other => {
            let text = other.to_string();
            StatementKind::Set { name: text.split_whitespace().nth(1).unwrap_or("").to_ascii_lowercase(), value: text, local: false }
        }
    }
}

fn analyze_one(stmt: &Statement) -> (StatementInfo, usize) {
    let mut b = Builder::new();
    let mut facts = ShapeFacts::default();
    let kind = match stmt {
        Statement::Query(q) => {
            b.query(q, None, 0);
            facts = query_facts(q);
            // `SELECT … INTO t` is CREATE TABLE AS: a cached "SELECT n" would create nothing.
            if matches!(q.body.as_ref(), SetExpr::Select(sel) if sel.into.is_some()) {
                StatementKind::Ddl
            } else {
                StatementKind::Read
            }
        }
        Statement::Insert(i) => {
            b.insert(i);
            if let Some(q) = &i.source {
                if let SetExpr::Values(v) = &*q.body {
                    facts.insert_rows = v.rows.len();
                }
            }
            StatementKind::Write
        }
        Statement::Update(u) => {
            b.update(u);
            StatementKind::Write
        }
        Statement::Delete(d) => {
            b.delete(d);
            StatementKind::Write
        }
        Statement::StartTransaction { .. } => StatementKind::Transaction { control: TxControl::Begin },
        Statement::Commit { .. } => StatementKind::Transaction { control: TxControl::Commit },
        Statement::Rollback { savepoint: Some(_), .. } => StatementKind::Transaction { control: TxControl::RollbackToSavepoint },
        Statement::Rollback { .. } => StatementKind::Transaction { control: TxControl::Rollback },
        Statement::Savepoint { .. } => StatementKind::Transaction { control: TxControl::Savepoint },
        Statement::ReleaseSavepoint { .. } => StatementKind::Transaction { control: TxControl::Release },
        Statement::Set(set) => set_kind(set),
        Statement::Copy { source, to, .. } => {
            match source {
                CopySource::Table { table_name, .. } => {
                    if let Some(p) = name_parts(table_name) {
                        let (schema, name) = match p.as_slice() {
                            [n] => (None, n.clone()),
                            [s, n] => (Some(s.clone()), n.clone()),
                            _ => (None, p.last().cloned().unwrap_or_default()),
                        };
                        b.info.table(schema.as_deref(), &name);
                    }
                }
                CopySource::Query(q) => {
                    b.query(q, None, 0);
                }
            }
            if *to {
                StatementKind::CopyTo
            } else {
                StatementKind::CopyFrom
            }
        }
        Statement::Truncate { .. } => StatementKind::Write,
        Statement::Execute { .. } => {
            b.giveup("EXECUTE of an SQL-level prepared statement (PREPARE is not tracked)");
            StatementKind::Utility
        }
        other => {
            let text = other.to_string();
            let first = text.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            match first.as_str() {
                "CREATE" | "ALTER" | "DROP" | "COMMENT" | "GRANT" | "REVOKE" | "REINDEX" | "CLUSTER" | "SECURITY" | "REFRESH"
                | "RENAME" => StatementKind::Ddl,
                _ => StatementKind::Utility,
            }
        }
    };
    let metadata_call = b.info.functions.iter().find(|f| changes_metadata(f)).cloned();
    let kind = match (kind, metadata_call) {
        (StatementKind::Read, Some(function)) => StatementKind::CitusMetadataCall { function },
        (k, _) => k,
    };
    let volatile = b.info.functions.iter().any(|f| !is_deterministic(f));
    let changes = matches!(kind, StatementKind::Ddl | StatementKind::CitusMetadataCall { .. })
        || b.info.functions.iter().any(|f| changes_metadata(f));
    let touches_temp = b.info.touches_temp || stmt_creates_temp(stmt);
    let selects = b.selects_seen;
    let info = StatementInfo {
        kind,
        tables: std::mem::take(&mut b.info.tables),
        functions: std::mem::take(&mut b.info.functions),
        volatile,
        locking: b.m.locking,
        touches_temp,
        touches_catalog: b.info.touches_catalog,
        changes_metadata: changes,
        facts,
        model: b.m,
        bindings: Default::default(),
    };
    (info, selects)
}

fn stmt_creates_temp(stmt: &Statement) -> bool {
    matches!(stmt, Statement::CreateTable(ct) if ct.temporary)
}

fn is_distance(op: &BinaryOperator) -> bool {
    match op {
        BinaryOperator::Spaceship => true,
        BinaryOperator::Custom(s) => matches!(s.as_str(), "<->" | "<=>" | "<#>"),
        other => matches!(other.to_string().as_str(), "<->" | "<=>" | "<#>"),
    }
}

fn has_distance(e: &Expr) -> bool {
    match e {
        Expr::BinaryOp { left, op, right } => is_distance(op) || has_distance(left) || has_distance(right),
        Expr::Nested(x) | Expr::UnaryOp { expr: x, .. } | Expr::Cast { expr: x, .. } => has_distance(x),
        _ => false,
    }
}

/// Class facts of the top-level query.
fn query_facts(q: &Query) -> ShapeFacts {
    let mut f = ShapeFacts::default();
    let limit = q.limit_clause.is_some() || q.fetch.is_some();
    if let Some(ob) = &q.order_by {
        if let sqlparser::ast::OrderByKind::Expressions(items) = &ob.kind {
            f.vector_search = limit && items.iter().any(|i| has_distance(&i.expr));
        }
    }
    if let SetExpr::Select(s) = &*q.body {
        let mut aggs = Vec::new();
        let mut note = |name: &str, _| {
            if is_aggregate(name) {
                aggs.push(name.to_string());
            }
        };
        for item in &s.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                visit_functions(e, &mut note);
            }
        }
        if let Some(h) = &s.having {
            visit_functions(h, &mut note);
        }
        f.has_aggregate = !aggs.is_empty();
        f.only_count = f.has_aggregate && aggs.iter().all(|a| a == "count");
        f.group_by = match &s.group_by {
            GroupByExpr::All(_) => true,
            GroupByExpr::Expressions(e, _) => !e.is_empty(),
        };
    }
    f
}
