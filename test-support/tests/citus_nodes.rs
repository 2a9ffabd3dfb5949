//! The multi-node fixture itself: every node holds exactly the rows its placements say, the sum
//! over the nodes is the coordinator's total, a key is found only on its node, roles carry the
//! coordinator's secrets, and the helpers that rewrite the catalog do what they say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test

use test_support::{citus_nodes, NodeCluster};

async fn count(url: &str, sql: &str) -> i64 {
    let c = test_support::connect(url).await;
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql} on {url}: {}", test_support::describe(&e))).get(0)
}

/// What the coordinator's metadata says `group` holds of `table` (bigint key `col`), counted on the
/// coordinator's complete rows.
async fn expected(cluster: &NodeCluster, table: &str, col: &str, group: i32) -> i64 {
    count(
        &cluster.coordinator.url,
        &format!(
            "SELECT count(*) FROM {table} d WHERE EXISTS (SELECT 1 FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
             WHERE s.logicalrelid = '{table}'::regclass AND pl.groupid = {group} \
               AND hashint8(d.{col}) BETWEEN s.shardminvalue::int AND s.shardmaxvalue::int)"
        ),
    )
    .await
}

#[tokio::test]
async fn each_node_holds_exactly_the_rows_its_placements_say() {
    let cluster = citus_nodes("fixture_nodes_rows");
    assert!(!cluster.is_real(), "the fixture's own test: unset CITUS_PROXY_TEST_CITUS");
    let pg = test_support::postgres();
    assert_eq!(cluster.coordinator.addr(), pg.addr());
    assert_eq!(cluster.workers.len(), 2);
    let total = count(&cluster.coordinator.url, "SELECT count(*) FROM users").await;
    assert_eq!(total, 5000);
    let mut sum = 0;
    for (table, col, all) in [("users", "user_id", 5000), ("orders", "user_id", 8000), ("documents", "doc_id", 3000)] {
        let mut table_sum = 0;
        for n in &cluster.workers {
            let here = count(&n.url, &format!("SELECT count(*) FROM {table}")).await;
            assert_eq!(here, expected(&cluster, table, col, n.group).await, "{table} on {} (group {})", n.addr(), n.group);
            assert!(here > 0 && here < all, "{table} on group {}: {here} of {all}", n.group);
            table_sum += here;
        }
        assert_eq!(table_sum, all, "{table}: the nodes together hold every row once");
        if table == "users" {
            sum = table_sum;
        }
    }
    assert_eq!(sum, total);
    // Reference tables are complete everywhere; coordinator-only tables exist on the coordinator only.
    for n in &cluster.workers {
        assert_eq!(count(&n.url, "SELECT count(*) FROM config").await, 200);
        let c = test_support::connect(&n.url).await;
        let e = c.query("SELECT count(*) FROM local_notes", &[]).await.expect_err("local_notes is coordinator-only");
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42P01"), "{e}");
        // The catalog names the real addresses, with synced metadata, as on the coordinator.
        let rows = c
            .query("SELECT groupid, nodename, nodeport, hasmetadata AND metadatasynced FROM pg_dist_node ORDER BY groupid", &[])
            .await
            .unwrap();
        let got: Vec<(i32, String, i32, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
        let want: Vec<(i32, String, i32, bool)> = cluster.all().map(|n| (n.group, n.host.clone(), i32::from(n.port), true)).collect();
        assert_eq!(got, want, "pg_dist_node on {}", n.addr());
    }
    // Text and uuid keys are split too (hashtext, uuid_hash): the nodes add up to the whole.
    for (table, all) in [("tenants_kv", 4000), ("accounts", 3000), ("page_views", 6000)] {
        let mut s = 0;
        for n in &cluster.workers {
            let here = count(&n.url, &format!("SELECT count(*) FROM {table}")).await;
            assert!(here > 0 && here < all, "{table} on group {}: {here}", n.group);
            s += here;
        }
        assert_eq!(s, all, "{table}");
    }
}

#[tokio::test]
async fn a_key_is_found_only_on_its_node() {
    let cluster = citus_nodes("fixture_nodes_keys");
    let mut groups = std::collections::BTreeSet::new();
    for k in [1_i64, 7, 42, 99, 1234, 4999] {
        let home = cluster.node_of_user(k);
        groups.insert(home.group);
        for n in &cluster.workers {
            let c = test_support::connect(&n.url).await;
            let rows = c.query("SELECT username FROM users WHERE user_id = $1", &[&k]).await.unwrap();
            if n.group == home.group {
                assert_eq!(rows.len(), 1, "user {k} on its node {}", n.addr());
                assert_eq!(rows[0].get::<_, String>(0), format!("user{k}"));
            } else {
                assert!(rows.is_empty(), "user {k} must not be on {} (its node is {})", n.addr(), home.addr());
            }
        }
    }
    assert_eq!(groups.len(), 2, "the sample keys cover both nodes");
    // facts.md §6/§7: 42 hashes to shard 102035, placed on the second worker (group 2).
    assert_eq!(cluster.shard_of_user(42), 102035);
    assert_eq!(cluster.node_of_user(42).group, 2);
}

#[tokio::test]
async fn roles_carry_the_coordinators_secrets_and_log_in_on_the_nodes() {
    let cluster = citus_nodes("fixture_nodes_roles");
    let secrets = |url: String| async move {
        let c = test_support::connect(&url).await;
        let rows = c.query("SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname LIKE 'cp\\_%' ORDER BY 1", &[]).await.unwrap();
        rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1))).collect::<Vec<_>>()
    };
    let pg = test_support::postgres();
    let want = secrets(pg.url("postgres")).await;
    assert_eq!(want.len(), test_support::AUTH_USERS.len());
    for n in &cluster.workers {
        let admin = n.url.replace(&format!("/{}?", cluster.database), "/postgres?");
        assert_eq!(secrets(admin).await, want, "role secrets on {}", n.addr());
        // SCRAM login with the password works on the node (its pg_hba checks cp_scram with SCRAM).
        let url = format!("postgres://cp_scram:pw-scram@{}/{}?sslmode=disable", n.addr(), cluster.database);
        let c = test_support::connect(&url).await;
        let who: String = c.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
        assert_eq!(who, "cp_scram");
    }
}

#[tokio::test]
async fn catalog_helpers_move_shards_and_flip_nodes() {
    let cluster = citus_nodes("fixture_nodes_helpers");
    let k = 42_i64;
    let from = cluster.node_of_user(k).clone();
    let to = cluster.workers.iter().find(|n| n.group != from.group).unwrap().clone();
    cluster.move_shard_of_user(k, to.group);
    assert_eq!(cluster.node_of_user(k).group, to.group, "the coordinator's placement moved");
    for n in &cluster.workers {
        // Every node's catalog says the same, and the rows moved with the shard.
        let group = count(&n.url, "SELECT groupid::bigint FROM pg_dist_placement WHERE shardid = 102035").await;
        assert_eq!(group, i64::from(to.group), "placement on {}", n.addr());
        let here = count(&n.url, &format!("SELECT count(*) FROM users WHERE user_id = {k}")).await;
        assert_eq!(here, i64::from(n.group == to.group), "user {k} on {}", n.addr());
    }
    let total: i64 = {
        let mut s = 0;
        for n in &cluster.workers {
            s += count(&n.url, "SELECT count(*) FROM users").await;
        }
        s
    };
    assert_eq!(total, 5000, "no row lost or doubled by the move");

    cluster.set_metadata_synced(1, false);
    cluster.point_node_at(2, 1);
    for n in cluster.all() {
        let synced = count(&n.url, "SELECT count(*) FROM pg_dist_node WHERE groupid = 1 AND NOT metadatasynced").await;
        assert_eq!(synced, 1, "on {}", n.addr());
        let port = count(&n.url, "SELECT nodeport::bigint FROM pg_dist_node WHERE groupid = 2").await;
        assert_eq!(port, 1, "on {}", n.addr());
    }
}

#[tokio::test]
async fn a_disposable_node_stops_and_shared_ones_refuse_to() {
    let cluster = test_support::citus_nodes_with_disposable("fixture_nodes_disposable");
    let own = cluster.node(2).clone();
    assert_ne!(own.port, citus_nodes("fixture_nodes_disposable_shared").node(2).port, "group 2 is an instance of its own");
    assert!(count(&own.url, "SELECT count(*) FROM users").await > 0);
    let shared = std::panic::catch_unwind(|| cluster.stop_node(1));
    assert!(shared.is_err(), "a shared node must not be stoppable");
    cluster.stop_node(2);
    let r = tokio_postgres::connect(&own.url, tokio_postgres::NoTls).await;
    assert!(r.is_err(), "node {} still accepts connections after stop_node", own.addr());
    // The shared node still answers.
    assert!(count(&cluster.node(1).url, "SELECT count(*) FROM users").await > 0);
}
