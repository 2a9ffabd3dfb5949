//! The snapshot follows the catalog, not creation-time formulas: split shards are found by binary
//! search over their real ranges, moved placements and inactive nodes are honoured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::catalog::{PlacementRow, ShardRow};
use citus_proxy_router::{Router, Topology};

fn route(topo: &Topology, sql: &str) -> (String, Vec<i64>, Vec<String>) {
    let d = Router::new(16).route_query(sql, topo, &["public"]);
    (d.route.word().to_string(), d.route.shard_ids(), d.route.nodes())
}

#[test]
fn split_shard_ranges_use_binary_search() {
    let mut rows = common::catalog_rows();
    // users shard 102035 covers [1476395008, 1610612735]; split it at hashint8(42) = 1509752520.
    rows.shards.retain(|s| s.shard_id != 102035);
    rows.placements.retain(|p| p.shard_id != 102035);
    for (id, lo, hi, group) in [(990001i64, "1476395008", "1509752519", 1), (990002, "1509752520", "1610612735", 2)] {
        rows.shards.push(ShardRow {
            schema: "public".into(),
            table: "users".into(),
            shard_id: id,
            min_value: Some(lo.into()),
            max_value: Some(hi.into()),
        });
        rows.placements.push(PlacementRow { placement_id: id, shard_id: id, shard_state: 1, group_id: group });
    }
    let topo = Topology::build(rows).expect("topology");
    let users = topo.table_by_name("public", "users").expect("users");
    assert!(!users.uniform);
    assert_eq!(users.shards.len(), 33);
    assert_eq!(
        route(&topo, "SELECT * FROM users WHERE user_id = 42"),
        ("single-shard".into(), vec![990002], vec!["127.0.0.1:9702".into()])
    );
    assert_eq!(users.shard_for_hash(1509752519).map(|s| s.id), Some(990001));
    assert_eq!(users.shard_for_hash(i32::MIN).map(|s| s.id), Some(102008));
    assert_eq!(users.shard_for_hash(i32::MAX).map(|s| s.id), Some(102039));
}

#[test]
fn moved_placements_and_inactive_nodes() {
    let mut rows = common::catalog_rows();
    for p in rows.placements.iter_mut().filter(|p| p.shard_id == 102035) {
        p.group_id = 1;
    }
    let topo = Topology::build(rows.clone()).expect("topology");
    assert_eq!(route(&topo, "SELECT * FROM users WHERE user_id = 42").2, vec!["127.0.0.1:9701".to_string()]);
    for n in rows.nodes.iter_mut().filter(|n| n.port == 9701) {
        n.active = false;
    }
    let topo = Topology::build(rows).expect("topology");
    let (word, shards, nodes) = route(&topo, "SELECT * FROM users WHERE user_id = 42");
    assert_eq!((word.as_str(), shards), ("single-shard", vec![102035]));
    assert!(nodes.is_empty(), "no active node holds the shard: {nodes:?}");
    assert_eq!(topo.inactive_nodes().count(), 1);
    assert!(!topo.warnings().is_empty());
}

#[test]
fn helpers_for_metrics() {
    let topo = common::topology();
    assert_eq!(topo.shard_count("public", "users"), Some(32));
    assert_eq!(topo.shard_count("public", "config"), Some(1));
    assert_eq!(topo.active_nodes().count(), 3);
    let per_node = topo.shards_per_node();
    assert!(per_node.iter().any(|(n, c)| n == "127.0.0.1:9700" && *c == 1), "{per_node:?}");
    let (t, s) = topo.shard(102035).expect("shard");
    assert_eq!((t.name.as_str(), s.index), ("users", 27));
}

#[test]
fn shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Topology>();
    assert_send_sync::<Router>();
    assert_send_sync::<citus_proxy_router::Prepared>();
    assert_send_sync::<citus_proxy_router::Decision>();
}
