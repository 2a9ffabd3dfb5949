//! The router's decision, put in the cache's terms: which tables (and, when proven, which one
//! shard of each) a read depends on, and what a write makes stale.

use citus_proxy_cache::{Policy, ShardRef, ShardScope, StatementFacts, TableId, WriteScope};
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::topology::Relation;
use citus_proxy_router::{Decision, Route, StatementInfo, TableName, Topology};

use crate::settings::words::first_word;
use crate::settings::TempRelations;

/// The relation a name stands for, with the identity the cache knows it by.
struct Resolved {
    id: TableId,
    relation: Relation,
}

fn resolve(t: &TableName, topo: &Topology, search_path: &[&str]) -> Resolved {
    let relation = topo.resolve(t.schema.as_deref(), &t.name, search_path);
    let schema = match relation {
        Relation::Citus(id) => topo.table(id).map(|c| c.schema.clone()),
        _ => None,
    };
    // Generations are counted per bare name (see the cache's generations), so the schema only
    // matters for matching `schema.name` rules; a plain table found through the search path is
    // matched by the schema written, else by name-only rules.
    let schema = schema.or_else(|| t.schema.clone()).unwrap_or_default();
    Resolved { id: TableId::new(schema, t.name.clone()), relation }
}

/// The facts of a single read statement, for the cache's policy and key.
/// A name that may be one of the session's temporary relations (`temp`) counts as temporary:
/// its rows are the session's own.
pub fn read_facts(d: &Decision, info: &StatementInfo, topo: &Topology, search_path: &[&str], temp: &TempRelations) -> StatementFacts {
    let mut facts = StatementFacts {
        read_only: d.analysis.is_read_only(),
        functions: info.functions.clone(),
        has_locking_clause: info.locking,
        touches_temp_or_catalog: info.touches_temp || info.touches_catalog,
        ..StatementFacts::default()
    };
    for t in &info.tables {
        let r = resolve(t, topo, search_path);
        if temp.shadows(t) {
            facts.touches_temp_or_catalog = true;
        }
        match r.relation {
            Relation::Citus(_) | Relation::Local('r' | 'p') => {}
            Relation::Catalog | Relation::Temp => facts.touches_temp_or_catalog = true,
            // A materialized view changes on REFRESH and a foreign table elsewhere: no write
            // through the proxy names them, so, like a view, they are never cached.
            Relation::Local(_) | Relation::View | Relation::Unknown => facts.reads_unknown_relation = true,
        }
        if !facts.tables.contains(&r.id) {
            facts.tables.push(r.id);
        }
    }
    facts.shard_scope = shard_scope(&d.route, topo);
    facts
}

/// Shard-precise only when the router named exactly one known shard per table.
fn shard_scope(route: &Route, topo: &Topology) -> ShardScope {
    let Route::SingleShard { shards, .. } = route else { return ShardScope::All };
    let mut out: Vec<ShardRef> = Vec::with_capacity(shards.len());
    for s in shards {
        let Some(id) = s.shard_id else { return ShardScope::All };
        let Some((table, _)) = topo.shard(id) else { return ShardScope::All };
        let Ok(shard_id) = u64::try_from(id) else { return ShardScope::All };
        let table = TableId::new(table.schema.clone(), table.name.clone());
        if out.iter().any(|o| o.table == table && o.shard_id != shard_id) {
            return ShardScope::All;
        }
        out.push(ShardRef { table, shard_id });
    }
    ShardScope::Shards(out)
}

/// What the statements of `d` make stale once they commit; empty for statements that write
/// nothing. `sql` is the text (utility statements carry nothing more); `policy` says which
/// functions are known not to write.
pub fn write_scopes(d: &Decision, topo: &Topology, search_path: &[&str], sql: &str, policy: &Policy) -> Vec<WriteScope> {
    let mut out = Vec::new();
    let single = d.analysis.statements.len() == 1;
    for (i, info) in d.analysis.statements.iter().enumerate() {
        let route = if single { Some(&d.route) } else { d.statements.get(i) };
        if let Some(scope) = statement_scope(info, route, topo, search_path, sql, policy) {
            if scope == WriteScope::Everything {
                return vec![WriteScope::Everything];
            }
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
    }
    out
}

fn statement_scope(
    info: &StatementInfo,
    route: Option<&Route>,
    topo: &Topology,
    search_path: &[&str],
    sql: &str,
    policy: &Policy,
) -> Option<WriteScope> {
    match &info.kind {
        StatementKind::Read | StatementKind::CopyTo => {
            // A function neither built-in list nor `cache.cacheable_functions` vouches for may
            // write anything. (Built-in volatile ones such as now() or nextval() write no table.)
            let unknown = info.functions.iter().any(|f| {
                citus_proxy_cache::function_class(f) == citus_proxy_cache::FunctionClass::Unknown && !policy.function_is_cacheable(f)
            });
            unknown.then_some(WriteScope::Everything)
        }
        StatementKind::Transaction { .. } | StatementKind::Set { .. } => None,
        StatementKind::Write | StatementKind::CopyFrom | StatementKind::Ddl => {
            if info.tables.is_empty() {
                // GRANT, REVOKE, ALTER ROLE, CREATE POLICY, DROP SCHEMA … CASCADE: what a role
                // may read, or which tables exist, changed.
                return Some(WriteScope::Everything);
            }
            let mut tables = Vec::with_capacity(info.tables.len());
            for t in &info.tables {
                let r = resolve(t, topo, search_path);
                if r.relation == Relation::View {
                    // Its base tables are not known here.
                    return Some(WriteScope::Everything);
                }
                tables.push(r.id);
            }
            let shard_scope = match (&info.kind, route) {
                (StatementKind::Write, Some(r)) => shard_scope(r, topo),
                _ => ShardScope::All,
            };
            Some(WriteScope::Tables { tables, shard_scope })
        }
        // sqlparser leaves some harmless statements (RESET …) unparsed: judged by their text.
        StatementKind::Utility | StatementKind::Unparsed { .. } => (!harmless_utility(sql)).then_some(WriteScope::Everything),
        StatementKind::CitusMetadataCall { .. } => Some(WriteScope::Everything),
    }
}

/// Utility statements known to change no table's rows, by their text (MERGE, CALL, DO,
/// EXECUTE, EXPLAIN ANALYZE … and anything else may).
fn harmless_utility(sql: &str) -> bool {
    const HARMLESS: &[&str] = &[
        "SHOW",
        "LISTEN",
        "UNLISTEN",
        "NOTIFY",
        "VACUUM",
        "ANALYZE",
        "CHECKPOINT",
        "DISCARD",
        "RESET",
        "DEALLOCATE",
        "FETCH",
        "CLOSE",
        "MOVE",
        "LOCK",
        "DECLARE",
        "PREPARE",
        "LOAD",
        "SET",
    ];
    let word = first_word(sql);
    if word.eq_ignore_ascii_case("EXPLAIN") {
        // EXPLAIN ANALYZE runs the statement.
        return !sql.to_ascii_uppercase().contains("ANALYZE");
    }
    HARMLESS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilities() {
        assert!(harmless_utility("vacuum t"));
        assert!(harmless_utility("RESET search_path"));
        assert!(harmless_utility("explain select 1"));
        assert!(!harmless_utility("EXPLAIN (ANALYZE) DELETE FROM t"));
        assert!(!harmless_utility("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE"));
        assert!(!harmless_utility("CALL p()"));
        assert!(!harmless_utility("DO $$ begin end $$"));
    }
}
