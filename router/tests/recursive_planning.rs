//! Statements Citus runs by planning part of them recursively or by pulling them to the
//! coordinator (issue #10 §4). Each kind is checked on several instances, with the decision Citus
//! makes for it, read from its planner (multi_router_planner.c, local_distributed_join_planner.c,
//! recursive_planning.c, insert_select_planner.c) and facts.md §10:
//! - reference ⋈ local: the router planner takes only the coordinator's placement → one task on
//!   the coordinator (`reference`, node 9700, shard 102072);
//! - distributed at one key ⋈ local: one side becomes a subplan (the distributed one when its
//!   unique key is fixed, else the local one); either way the distributed work is the one shard;
//! - correlated `EXISTS` / `NOT EXISTS` on the co-located key: a semi-/anti-join pushed down to
//!   every shard (`multi-shard`), never an error;
//! - `INSERT … SELECT` from a local (or reference) source into a distributed table: pulled to the
//!   coordinator, rows sent to the shards their values hash to (`multi-shard`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::{Router, Topology};

const ALL_USERS: usize = 32;

fn route(r: &Router, topo: &Topology, sql: &str) -> (String, Vec<i64>, Vec<String>, String) {
    let d = r.route_query(sql, topo, &["public"]);
    (d.route.word().to_string(), d.route.shard_ids(), d.route.nodes(), d.reason)
}

#[test]
fn reference_joined_with_local_is_one_task_on_the_coordinator() {
    let (topo, r) = (common::topology(), Router::new(64));
    for sql in [
        "SELECT * FROM config c JOIN local_notes n ON n.id::text = c.key",
        "SELECT * FROM local_notes n, config c WHERE c.key = 'key1'",
        "SELECT n.id FROM local_notes n WHERE n.id IN (SELECT length(key) FROM config)",
        "SELECT c.value FROM config c LEFT JOIN local_notes n ON n.id = 1 WHERE c.key = 'key7'",
    ] {
        let (word, shards, nodes, why) = route(&r, &topo, sql);
        assert_eq!((word.as_str(), shards.as_slice()), ("reference", &[102072][..]), "{sql}: {why}");
        assert_eq!(nodes, vec!["127.0.0.1:9700".to_string()], "{sql}: the task runs on the coordinator's placement");
    }
}

#[test]
fn reference_joined_with_local_without_a_coordinator_placement_is_not_guessed() {
    let mut rows = common::catalog_rows();
    rows.placements.retain(|p| !(p.shard_id == 102072 && p.group_id == 0));
    let topo = Topology::build(rows).expect("topology");
    let (word, _, _, why) = route(&Router::new(8), &topo, "SELECT * FROM config c JOIN local_notes n ON n.id::text = c.key");
    assert_eq!(word, "unknown", "{why}");
}

#[test]
fn distributed_at_one_key_joined_with_local_touches_that_shard() {
    let (topo, r) = (common::topology(), Router::new(64));
    for (sql, want) in [
        // users.user_id is unique: the users side becomes a subplan on shard 102035.
        ("SELECT * FROM users u JOIN local_notes n ON n.id = u.user_id WHERE u.user_id = 42", &[102035][..]),
        ("SELECT * FROM local_notes n, users u WHERE u.user_id = 42", &[102035]),
        // events.user_id is not unique: local_notes becomes the subplan, events one task.
        ("SELECT * FROM events e JOIN local_notes n ON n.id = e.user_id WHERE e.user_id = 42", &[102067]),
        // co-located tables at one key with a local table.
        (
            "SELECT * FROM users u JOIN orders o USING (user_id) JOIN local_notes n ON n.id = u.user_id WHERE u.user_id = 42",
            &[102035, 102100],
        ),
        ("SELECT * FROM users u JOIN config c ON c.key = u.username JOIN local_notes n ON true WHERE u.user_id = 42", &[102035, 102072]),
    ] {
        let (word, shards, _, why) = route(&r, &topo, sql);
        assert_eq!((word.as_str(), shards.as_slice()), ("single-shard", want), "{sql}: {why}");
        assert!(why.contains("local"), "the reason says the local table is planned recursively: {why}");
    }
    // Without a key the distributed side fans out, never single-shard.
    let (word, shards, _, why) = route(&r, &topo, "SELECT * FROM users u JOIN local_notes n ON n.id = u.user_id");
    assert_eq!((word.as_str(), shards.len()), ("multi-shard", ALL_USERS), "{why}");
    // A join Citus would refuse between distributed tables is not claimed as an error once a
    // local table takes part (the local table is planned first).
    let (word, _, _, why) = route(&r, &topo, "SELECT * FROM users u JOIN page_views p ON u.user_id = p.site_id JOIN local_notes n ON true");
    assert_ne!(word, "error", "{why}");
}

#[test]
fn correlated_exists_on_the_colocated_key_is_pushed_down() {
    let (topo, r) = (common::topology(), Router::new(64));
    for sql in [
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id)",
        "SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id AND o.total > 5)",
        "SELECT count(*) FROM users u WHERE EXISTS (SELECT 1 FROM events e WHERE u.user_id = e.user_id AND e.kind = 'buy')",
        "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM users u WHERE u.user_id = o.user_id) AND o.total > 10",
    ] {
        let (word, shards, _, why) = route(&r, &topo, sql);
        assert_eq!(word, "multi-shard", "{sql}: {why}");
        assert!(shards.len() >= ALL_USERS, "{sql}: every shard of the outer table: {shards:?}");
    }
    // At one key the same shape stays on one shard of each table.
    let (word, shards, _, why) =
        route(&r, &topo, "SELECT * FROM users u WHERE u.user_id = 42 AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id)");
    assert_eq!((word.as_str(), shards.as_slice()), ("single-shard", &[102035, 102100][..]), "{why}");
}

#[test]
fn sublinks_are_never_claimed_as_errors() {
    let (topo, r) = (common::topology(), Router::new(64));
    for sql in [
        // Not on the key, or not co-located: Citus plans the sublink on its own when it can.
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.order_id = u.user_id)",
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM page_views p WHERE p.site_id = 7)",
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.name = 'x')",
    ] {
        let (word, _, _, why) = route(&r, &topo, sql);
        assert_ne!(word, "error", "{sql}: {why}");
    }
    // A flat join Citus refuses stays an error (routing-examples R121).
    let (word, _, _, _) = route(&r, &topo, "SELECT * FROM users u JOIN orders o ON u.user_id = o.order_id WHERE u.user_id = 42");
    assert_eq!(word, "error");
}

#[test]
fn insert_select_from_local_is_pulled_to_the_coordinator() {
    let (topo, r) = (common::topology(), Router::new(64));
    for sql in [
        "INSERT INTO users (user_id, username) SELECT id, 'x' FROM local_notes",
        "INSERT INTO users SELECT id, 'x', 'y' FROM local_notes WHERE id = 5",
        "INSERT INTO page_views (site_id, url) SELECT id, 'u' FROM local_notes",
        "INSERT INTO orders (order_id, user_id, total) SELECT n.id, n.id, 1 FROM local_notes n JOIN config c ON c.key = n.id::text",
    ] {
        let (word, shards, _, why) = route(&r, &topo, sql);
        assert_eq!(word, "multi-shard", "{sql}: {why}");
        assert_eq!(shards.len(), ALL_USERS, "{sql}: any shard of the target may receive rows");
        assert!(why.contains("pulled to the coordinator"), "{why}");
    }
    // Into a local table from a distributed SELECT: the SELECT is the distributed work.
    let (word, shards, _, why) = route(&r, &topo, "INSERT INTO local_notes SELECT user_id::int FROM users WHERE user_id = 42");
    assert_eq!((word.as_str(), shards.as_slice()), ("single-shard", &[102035][..]), "{why}");
}
