//! A statement shape keeps its last binding (relation and column resolution) for reuse; these
//! check it is never reused under another topology snapshot or another search_path, where the
//! same names mean other relations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::{Router, Topology};

const POINT: &str = "SELECT username FROM users WHERE user_id = 42";
/// users' shard for hashint8(42) in the fixture.
const SHARD_42: i64 = 102035;

fn word_and_tables(d: &citus_proxy_router::Decision) -> (String, Vec<String>) {
    (d.route.word().to_string(), d.route.shards().iter().map(|s| s.table.clone()).collect())
}

/// The fixture with its Citus tables listed in the reverse order: every table id changes.
fn reordered() -> Topology {
    let mut rows = common::catalog_rows();
    rows.partitions.reverse();
    Topology::build(rows).expect("topology")
}

/// The fixture where users is no Citus table, only a plain table on the coordinator.
fn users_undistributed() -> Topology {
    let mut rows = common::catalog_rows();
    rows.partitions.retain(|p| p.table != "users");
    rows.shards.retain(|s| s.table != "users");
    Topology::build(rows).expect("topology")
}

#[test]
fn a_new_snapshot_rebinds() {
    let router = Router::new(64);
    let first = common::topology();
    let d = router.route_query(POINT, &first, &["public"]);
    assert_eq!(word_and_tables(&d), ("single-shard".into(), vec!["users".into()]));
    assert_eq!(d.route.shard_ids(), vec![SHARD_42]);

    // Same names, other table ids: a binding kept from `first` would name another table.
    let second = reordered();
    for _ in 0..2 {
        let d = router.route_query(POINT, &second, &["public"]);
        assert_eq!(word_and_tables(&d), ("single-shard".into(), vec!["users".into()]));
        assert_eq!(d.route.shard_ids(), vec![SHARD_42]);
    }
    let third = users_undistributed();
    assert_eq!(router.route_query(POINT, &third, &["public"]).route.word(), "local");
    // Back to an older snapshot that is still alive.
    assert_eq!(router.route_query(POINT, &first, &["public"]).route.shard_ids(), vec![SHARD_42]);
}

#[test]
fn a_snapshot_built_after_the_old_one_is_dropped_rebinds() {
    let router = Router::new(64);
    let prepared = router.prepare("SELECT username FROM users WHERE user_id = $1", &[20]);
    let param = 42i64.to_be_bytes();
    for round in 0..8 {
        // A new snapshot each round, the previous one freed first (its memory may be reused).
        let topo = if round % 2 == 0 { common::topology() } else { users_undistributed() };
        let d = router.route_bound(&prepared, &[Some(&param)], &[1], &topo, &["public"]);
        let want = if round % 2 == 0 { "single-shard" } else { "local" };
        assert_eq!(d.route.word(), want, "round {round}");
        drop(topo);
    }
}

#[test]
fn another_search_path_rebinds() {
    let router = Router::new(64);
    let topo = common::topology();
    let routes = |path: &[&str]| router.route_query(POINT, &topo, path).route.word().to_string();
    assert_eq!(routes(&["public"]), "single-shard");
    // No users in schema app: the name resolves to nothing there.
    assert_eq!(routes(&["app"]), "unknown");
    assert_eq!(routes(&["app", "public"]), "single-shard");
    assert_eq!(routes(&["app"]), "unknown");
    assert_eq!(routes(&["public"]), "single-shard");

    let prepared = router.prepare("SELECT username FROM users WHERE user_id = $1", &[]);
    let bound = |path: &[&str]| router.route_bound(&prepared, &[Some(b"42")], &[], &topo, path).route.word().to_string();
    assert_eq!(bound(&["public"]), "single-shard");
    assert_eq!(bound(&["app"]), "unknown");
    assert_eq!(bound(&["public"]), "single-shard");
    // Parameter types are inferred through the same binding.
    assert_eq!(prepared.param_types(&topo, &["public"]), vec![20]);
    assert_eq!(prepared.param_types(&topo, &["app"]), Vec::<u32>::new());
}
