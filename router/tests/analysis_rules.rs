//! Pruning rules one by one: SQL → route (and shards where real Citus's answer is known from
//! routing-examples.tsv / facts.md: 42 → 102035, 43 → 102031, 1 → 102032, 2 → 102009, 3 → 102023).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::{Router, Topology};

fn check(router: &Router, topo: &Topology, cases: &[(&str, &str, &[i64])]) {
    let mut bad = Vec::new();
    for (sql, want, shards) in cases {
        let d = router.route_query(sql, topo, &["public"]);
        let ok = d.route.word() == *want && (shards.is_empty() || d.route.shard_ids() == *shards);
        if !ok {
            bad.push(format!("{sql}\n    want {want} {shards:?}, got {} {:?}: {}", d.route.word(), d.route.shard_ids(), d.reason));
        }
    }
    assert!(bad.is_empty(), "{} of {} cases wrong:\n{}", bad.len(), cases.len(), bad.join("\n"));
}

#[test]
fn single_shard_forms() {
    let (topo, r) = (common::topology(), Router::new(256));
    check(
        &r,
        &topo,
        &[
            ("SELECT * FROM users WHERE user_id = 42.5", "single-shard", &[102031]),
            ("SELECT * FROM users WHERE user_id = 41 + 1", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = 42 + 0", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = abs(-42)", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = CAST(42 AS bigint)", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = 42::int", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE \"user_id\" = 42", "single-shard", &[102035]),
            ("SELECT * FROM public.users WHERE public.users.user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM public.users u WHERE u.user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE NOT (user_id <> 42)", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE (user_id = 42 AND username = 'a') OR (user_id = 42 AND email = 'b')", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id IN (42, NULL)", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = ANY (ARRAY[41, 42])", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = ANY ('{41,42}'::bigint[])", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id = 42 FOR UPDATE", "single-shard", &[102035]),
            ("SELECT * FROM accounts WHERE account_uuid = '19A20BD6-AB2B-4DA1-FFE8-3A8890D6404A'", "single-shard", &[102106]),
            ("SELECT * FROM accounts WHERE account_uuid = '{19a20bd6ab2b4da1ffe83a8890d6404a}'", "single-shard", &[102106]),
            ("SELECT * FROM accounts WHERE account_uuid = uuid '19a20bd6-ab2b-4da1-ffe8-3a8890d6404a'", "single-shard", &[102106]),
            ("SELECT * FROM tenants_kv WHERE tenant = 'tenant1'::varchar", "single-shard", &[102149]),
            ("SELECT * FROM page_views WHERE site_id = 7::bigint", "single-shard", &[102177]),
            (
                "SELECT * FROM users u WHERE u.user_id = 42 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id)",
                "single-shard",
                &[102035, 102100],
            ),
            (
                "SELECT * FROM users u WHERE u.user_id = 42 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id)",
                "single-shard",
                &[102035, 102100],
            ),
            ("WITH x AS (SELECT * FROM users WHERE user_id = 42) SELECT * FROM x", "single-shard", &[102035]),
            ("WITH x AS (SELECT user_id, username FROM users) SELECT * FROM x WHERE user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM (SELECT user_id, username FROM users) s WHERE s.user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM users u JOIN orders o USING (user_id) WHERE user_id = 42", "single-shard", &[102035, 102100]),
            ("SELECT * FROM users u RIGHT JOIN orders o ON u.user_id = o.user_id WHERE o.user_id = 42", "single-shard", &[102035, 102100]),
            ("INSERT INTO users VALUES (41, 'a', 'b'), (42, 'c', 'd')", "single-shard", &[102035]),
            ("INSERT INTO users (username, user_id) VALUES ('x', 43)", "single-shard", &[102031]),
            ("UPDATE users SET user_id = user_id, email = 'x' WHERE user_id = 42", "single-shard", &[102035]),
            ("UPDATE users SET user_id = 42 WHERE user_id = 42", "single-shard", &[102035]),
            ("DELETE FROM orders o USING users u WHERE u.user_id = o.user_id AND u.user_id = 42", "single-shard", &[102035, 102100]),
            ("BEGIN; SELECT * FROM users WHERE user_id = 42; COMMIT", "single-shard", &[102035]),
            ("/* citus-proxy: cache ttl=30s */ SELECT * FROM users WHERE user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM (SELECT * FROM users) s WHERE s.user_id = 42", "single-shard", &[102035]),
            ("WITH x AS (SELECT * FROM users) SELECT * FROM x WHERE user_id = 42", "single-shard", &[102035]),
            ("SELECT * FROM users WHERE user_id IN (SELECT user_id FROM orders WHERE user_id = 42)", "single-shard", &[102035, 102100]),
        ],
    );
}

#[test]
fn not_pruned_forms() {
    let (topo, r) = (common::topology(), Router::new(256));
    check(
        &r,
        &topo,
        &[
            ("SELECT * FROM users WHERE user_id IS NULL", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id BETWEEN 42 AND 42", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id >= 42 AND user_id <= 42", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id <> 42", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id NOT IN (42)", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id = 42 OR username = 'x'", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id::text = '42'", "multi-shard", &[]),
            ("SELECT * FROM tenants_kv WHERE lower(tenant) = 'tenant1'", "multi-shard", &[]),
            ("SELECT * FROM tenants_kv WHERE tenant LIKE 'tenant1'", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id = random()::bigint", "multi-shard", &[]),
            ("SELECT * FROM users WHERE user_id IN (1, 2)", "multi-shard", &[102009, 102032]),
            ("SELECT * FROM users u JOIN orders o ON u.user_id = o.user_id WHERE u.user_id IN (1, 2)", "multi-shard", &[]),
            ("INSERT INTO users VALUES (1, 'a', 'b'), (2, 'c', 'd')", "multi-shard", &[102009, 102032]),
            // A correlated IN sublink is not pulled up: its constant must not reach users.
            (
                "SELECT * FROM users u WHERE user_id IN (SELECT o.user_id FROM orders o WHERE o.user_id = 42 AND o.order_id > u.user_id)",
                "multi-shard",
                &[],
            ),
            (
                "SELECT u.user_id, (SELECT count(*) FROM orders o WHERE o.user_id = u.user_id) FROM users u WHERE u.user_id = 42",
                "multi-shard",
                &[],
            ),
        ],
    );
}

#[test]
fn other_routes() {
    let (topo, r) = (common::topology(), Router::new(256));
    check(
        &r,
        &topo,
        &[
            ("SELECT * FROM users WHERE false", "zero-shard", &[]),
            ("SELECT * FROM users u LEFT JOIN (SELECT * FROM orders WHERE false) o ON u.user_id = o.user_id", "multi-shard", &[]),
            (
                "SELECT * FROM users u LEFT JOIN (SELECT * FROM orders WHERE user_id = 42) o ON u.user_id = o.user_id WHERE u.user_id = 42",
                "single-shard",
                &[102035, 102100],
            ),
            ("SELECT * FROM users WHERE user_id = 42 AND user_id = 43", "zero-shard", &[]),
            ("SELECT * FROM users u JOIN orders o ON u.user_id = o.user_id WHERE u.user_id = NULL", "zero-shard", &[]),
            ("SELECT * FROM config WHERE key = 'key1'", "reference", &[102072]),
            ("UPDATE config SET value = 'x' WHERE key = 'key1'", "reference", &[102072]),
            ("INSERT INTO config VALUES ('k', 'v')", "reference", &[102072]),
            ("SELECT * FROM local_notes", "local", &[]),
            ("INSERT INTO local_notes VALUES (1)", "local", &[]),
            ("SELECT 1", "coordinator", &[]),
            ("SELECT create_distributed_table('t', 'id')", "coordinator", &[]),
            ("SELECT * FROM pg_class", "coordinator", &[]),
            ("SELECT * FROM information_schema.tables", "coordinator", &[]),
            ("BEGIN", "utility", &[]),
            ("SET search_path TO public", "utility", &[]),
            ("SHOW search_path", "utility", &[]),
            ("CREATE TABLE t (a int)", "utility", &[]),
            ("VACUUM users", "utility", &[]),
            ("SELECT * FROM no_such_table WHERE id = 1", "unknown", &[]),
            ("DO $$ BEGIN END $$", "unknown", &[]),
            ("EXECUTE p(42)", "unknown", &[]),
            ("SELECT * INTO t2 FROM users", "unknown", &[]),
            ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r", "unknown", &[]),
            ("SELECT * FROM users WHERE user_id = 42 FOR NO KEY UPDATE", "unknown", &[]),
            ("INSERT INTO users VALUES (NULL, 'x', 'y')", "error", &[]),
            ("INSERT INTO events (kind) VALUES ('x')", "error", &[]),
            ("UPDATE users SET user_id = user_id + 1 WHERE user_id = 42", "error", &[]),
            ("SELECT * FROM users u JOIN orders o ON u.user_id = o.order_id", "error", &[]),
            ("SELECT * FROM users WHERE user_id IN (1, 2) FOR SHARE", "error", &[]),
        ],
    );
}

#[test]
fn literal_rebinding_on_cache_hits() {
    let (topo, r) = (common::topology(), Router::new(256));
    let a = r.route_query("SELECT * FROM users WHERE user_id = 42", &topo, &["public"]);
    let b = r.route_query("SELECT * FROM users WHERE user_id = 43", &topo, &["public"]);
    let c = r.route_query("SELECT * FROM users WHERE user_id = -42", &topo, &["public"]);
    let c2 = r.route_query("SELECT * FROM users WHERE user_id = '-42'", &topo, &["public"]);
    assert_eq!(a.route.shard_ids(), vec![102035]);
    assert_eq!(b.route.shard_ids(), vec![102031]);
    assert_eq!(c.route.shard_ids(), c2.route.shard_ids());
    assert!(std::sync::Arc::ptr_eq(&a.analysis, &b.analysis), "same shape, one analysis");
    assert!(a.explain_text().contains("hash 1509752520 → shard 102035 on 127.0.0.1:9702"), "{}", a.explain_text());
    let j = a.explain_json();
    assert_eq!(j["route"], "single-shard");
    assert_eq!(j["shards"][0], 102035);
    assert_eq!(j["nodes"][0], "127.0.0.1:9702");
    assert_eq!(j["tables"][0], "users");
}

#[test]
fn prepared_statements() {
    let (topo, r) = (common::topology(), Router::new(256));
    let p = r.prepare("SELECT * FROM users WHERE user_id IN ($1, $2)", &[20, 20]);
    let same = r.route_bound(&p, &[Some(b"41"), Some(b"42")], &[], &topo, &["public"]);
    assert_eq!(same.route.shard_ids(), vec![102035]);
    let two = r.route_bound(&p, &[Some(b"1"), Some(b"2")], &[], &topo, &["public"]);
    assert_eq!(two.route.word(), "multi-shard");
    let null = r.route_bound(&p, &[None, None], &[], &topo, &["public"]);
    assert_eq!(null.route.word(), "zero-shard");
    let bad = r.route_bound(&p, &[Some(b"x"), Some(b"42")], &[], &topo, &["public"]);
    assert_ne!(bad.route.word(), "single-shard", "an unparsable value never yields a shard claim");
    let short = r.route_bound(&p, &[Some(&[0u8, 1][..]), Some(b"42")], &[1], &topo, &["public"]);
    assert_ne!(short.route.word(), "single-shard");
    let any = r.prepare("SELECT * FROM users WHERE user_id = ANY($1)", &[]);
    let d = r.route_bound(&any, &[Some(b"{41,42}")], &[], &topo, &["public"]);
    assert_eq!(d.route.shard_ids(), vec![102035]);
    let int4 = r.prepare("SELECT * FROM users WHERE user_id = $1", &[23]);
    let d = r.route_bound(&int4, &[Some(&42i32.to_be_bytes()[..])], &[1], &topo, &["public"]);
    assert_eq!(d.route.shard_ids(), vec![102035], "declared int4 binary on an int8 key");
}

#[test]
fn analysis_facts() {
    let (topo, r) = (common::topology(), Router::new(256));
    let d = r.route_query("SELECT doc_id FROM documents ORDER BY embedding <-> '[1,2]' LIMIT 5", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "vector_search");
    let d = r.route_query("SELECT count(*) FROM users", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "count");
    let d = r.route_query("SELECT kind, avg(user_id) FROM events GROUP BY kind", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "multi_shard_aggregation");
    let d = r.route_query("SELECT * FROM users WHERE user_id = 42", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "single_shard_query");
    assert!(!d.analysis.volatile());
    let d = r.route_query("SELECT citus_add_node('10.0.0.3', 5432)", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "worker_registration");
    assert!(d.analysis.changes_metadata());
    let d = r.route_query("SELECT create_distributed_table('t', 'id')", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "shard_creation");
    let d = r.route_query("COPY users FROM STDIN", &topo, &["public"]);
    assert_eq!(d.class.as_str(), "bulk_insert");
    let d = r.route_query("SELECT now(), nextval('s')", &topo, &["public"]);
    assert!(d.analysis.volatile());
    let d = r.route_query("/* citus-proxy: cache ttl=30s */ SELECT * FROM config", &topo, &["public"]);
    assert_eq!(d.analysis.cache_hint.and_then(|h| h.ttl), Some(std::time::Duration::from_secs(30)));
    let d = r.route_query("SET LOCAL statement_timeout = 5", &topo, &["public"]);
    assert!(
        matches!(d.analysis.kind(), Some(citus_proxy_router::StatementKind::Set { name, local: true, .. }) if name == "statement_timeout")
    );
    let d = r.route_query("ALTER TABLE users ADD COLUMN x int", &topo, &["public"]);
    assert!(d.analysis.changes_metadata());
    let d = r.route_query("SELECT * FROM users WHERE user_id = 1 FOR UPDATE", &topo, &["public"]);
    assert!(d.analysis.statements[0].locking);
    let rows: Vec<String> = (0..1000).map(|i| format!("({i}, 'u', 'e')")).collect();
    let d = r.route_query(&format!("INSERT INTO users VALUES {}", rows.join(",")), &topo, &["public"]);
    assert_eq!(d.class.as_str(), "bulk_insert");
    assert_eq!(d.route.word(), "multi-shard");
}

#[test]
fn select_into_creates_a_table_and_is_no_read() {
    let (r, topo) = (citus_proxy_router::Router::new(16), common::topology());
    let d = r.route_query("SELECT * INTO users_copy FROM users WHERE user_id = 42", &topo, &["public"]);
    assert!(matches!(d.analysis.kind(), Some(citus_proxy_router::StatementKind::Ddl)), "{:?}", d.analysis.kind());
    let d = r.route_query("SELECT * FROM users WHERE user_id = 42", &topo, &["public"]);
    assert!(matches!(d.analysis.kind(), Some(citus_proxy_router::StatementKind::Read)), "{:?}", d.analysis.kind());
}
