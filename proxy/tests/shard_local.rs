//! Shard-local routing (issue #13): with `routing.shard_local = true` in transaction pooling, a
//! single-shard transaction runs on the node holding its shard; everything else on the
//! coordinator. Against the multi-node fixture (test_support::citus_nodes), where each worker holds
//! only its placements' rows, the answer alone tells right from wrong routing; `inet_server_port()`
//! inside the transaction says where it ran (also against a real cluster, CITUS_PROXY_TEST_CITUS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use std::collections::BTreeSet;

use common::nodes::{
    assert_tx_on, by_node, client, hint_absent, label, proxy_on, rise, shard_local_proxy, simple_one, simple_rows, tx_on_user, users_on,
    SERVED,
};
use common::pool::code;
use test_support::{citus_nodes, NodeCluster};

const BY_KEY: &str = "SELECT username, inet_server_port() FROM users WHERE user_id = $1";

/// Autocommit point select by key: (usernames, ports) as answered, extended protocol.
async fn by_key(c: &tokio_postgres::Client, k: i64) -> Vec<(String, i32)> {
    c.query(BY_KEY, &[&k])
        .await
        .unwrap_or_else(|e| panic!("user {k}: {}", test_support::describe(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Asserts the autocommit answer for `k` came from `port` with the user's row. Against real Citus a
/// router query evaluates inet_server_port() on the shard's node whatever the route, so there only
/// the row is checked here (the served metric checks the route).
fn assert_answer(cluster: &NodeCluster, got: &[(String, i32)], k: i64, port: u16, what: &str) {
    assert_eq!(got.len(), 1, "{what}: user {k}: one row expected, got {got:?} (0 rows = sent to a node without its shard)");
    assert_eq!(got[0].0, format!("user{k}"), "{what}");
    if !cluster.is_real() {
        assert_eq!(got[0].1, i32::from(port), "{what}: user {k} answered on port {}, expected {port}{}", got[0].1, hint_absent());
    }
}

#[tokio::test]
async fn autocommit_point_selects_run_on_the_node_of_their_key() {
    let cluster = citus_nodes("sl_autocommit");
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    let before = by_node(&p, SERVED);
    let mut groups = BTreeSet::new();
    for k in 1..=40_i64 {
        let home = cluster.node_of_user(k);
        groups.insert(home.group);
        assert_answer(&cluster, &by_key(&c, k).await, k, home.port, "extended protocol");
        let rows = simple_rows(&c, &format!("SELECT username, inet_server_port() FROM users WHERE user_id = {k}")).await;
        let got: Vec<(String, i32)> =
            rows.iter().map(|r| (r[0].clone().unwrap_or_default(), r[1].as_deref().unwrap_or("0").parse().unwrap())).collect();
        assert_answer(&cluster, &got, k, home.port, "simple protocol");
    }
    assert_eq!(groups.len(), 2, "keys 1..=40 cover both workers");
    let rose = rise(&before, &by_node(&p, SERVED));
    for w in &cluster.workers {
        let n = users_on(&cluster, w.group, 40).len() as f64 * 2.0;
        assert!(rose.get(&label(w)).copied().unwrap_or(0.0) >= n, "{SERVED}{{node=\"{}\"}} rose by {rose:?}, expected ≥ {n}", w.addr());
    }
    p.stop().await;
}

#[tokio::test]
async fn with_shard_local_off_everything_runs_on_the_coordinator() {
    let cluster = citus_nodes("sl_off");
    let p = proxy_on(&cluster, &[("pool.mode", "transaction"), ("auth.type", "trust"), ("routing.shard_local", "false")]).await;
    let c = client(&p, &cluster).await;
    for k in 1..=40_i64 {
        assert_answer(&cluster, &by_key(&c, k).await, k, cluster.coordinator.port, "shard_local off");
        let (names, port) = tx_on_user(&c, k).await;
        assert_eq!((names, port), (vec![format!("user{k}")], cluster.coordinator.port), "shard_local off, in a transaction");
    }
    let served = by_node(&p, SERVED);
    assert!(cluster.workers.iter().all(|w| !served.contains_key(&label(w))), "no worker served anything: {served:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_transaction_runs_where_its_first_statement_is() {
    let cluster = citus_nodes("sl_tx");
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    for k in 1..=12_i64 {
        assert_tx_on(&c, k, cluster.node_of_user(k), "simple-protocol transaction").await;
    }
    // tokio-postgres: BEGIN as a simple Query, then statements with parameters (placed by the first Bind).
    let mut c = c;
    for k in 13..=24_i64 {
        let home = cluster.node_of_user(k).clone();
        let tx = c.transaction().await.expect("begin");
        let rows = tx.query("SELECT username FROM users WHERE user_id = $1", &[&k]).await.expect("select");
        let port: i32 = tx.query_one("SELECT inet_server_port()", &[]).await.expect("port").get(0);
        let also: i64 = tx.query_one("SELECT count(*) FROM orders WHERE user_id = $1", &[&k]).await.expect("orders").get(0);
        // Whatever follows stays on the node (Citus plans anything there; on the fixture a
        // multi-shard count there is partial, so only where it ran is checked).
        tx.query_one("SELECT count(*) FROM users", &[]).await.expect("multi-shard inside");
        let still: i32 = tx.query_one("SELECT inet_server_port()", &[]).await.expect("port").get(0);
        tx.commit().await.expect("commit");
        assert_eq!(still, port, "user {k}: the rest of the transaction stays where it began");
        assert_eq!(port, i32::from(home.port), "user {k}: extended transaction ran on {port}, expected {}{}", home.addr(), hint_absent());
        assert_eq!(rows.len(), 1, "user {k}'s row");
        let want: i64 = test_support::connect(&cluster.coordinator.url)
            .await
            .query_one("SELECT count(*) FROM orders WHERE user_id = $1", &[&k])
            .await
            .unwrap()
            .get(0);
        assert_eq!(also, want, "the co-located orders of {k} are on the same node");
    }

    // BEGIN with options is answered too, and the options hold on the node.
    let k = 42_i64;
    let home = cluster.node_of_user(k);
    simple_rows(&c, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    simple_rows(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await;
    assert_eq!(simple_one(&c, "SHOW transaction_isolation").await, "repeatable read");
    assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, home.port.to_string(), "REPEATABLE READ transaction{}", hint_absent());
    simple_rows(&c, "COMMIT").await;
    simple_rows(&c, "START TRANSACTION READ ONLY").await;
    simple_rows(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await;
    assert_eq!(simple_one(&c, "SHOW transaction_read_only").await, "on");
    assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, home.port.to_string(), "START TRANSACTION READ ONLY");
    simple_rows(&c, "COMMIT").await;

    // An empty transaction works.
    simple_rows(&c, "BEGIN").await;
    simple_rows(&c, "COMMIT").await;

    // An error inside a node transaction, then ROLLBACK: the client goes on.
    simple_rows(&c, "BEGIN").await;
    simple_rows(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await;
    let e = c.simple_query("SELECT 1/0").await.expect_err("division by zero");
    assert_eq!(code(&e), "22012");
    let e = c.simple_query("SELECT 1").await.expect_err("the transaction is aborted");
    assert_eq!(code(&e), "25P02");
    simple_rows(&c, "ROLLBACK").await;
    assert_tx_on(&c, k, home, "after a rolled-back node transaction").await;
    assert_tx_on(&c, 7, cluster.node_of_user(7), "next key").await;
    p.stop().await;
}

#[tokio::test]
async fn single_shard_writes_land_on_the_node() {
    let cluster = citus_nodes("sl_writes");
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    let on = |url: String, k: i64| async move {
        let d = test_support::connect(&url).await;
        d.query("SELECT username FROM users WHERE user_id = $1", &[&k])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    for k in [3_i64, 4, 5, 6] {
        let home = cluster.node_of_user(k).clone();
        let n = c.execute("UPDATE users SET username = $2 WHERE user_id = $1", &[&k, &"renamed"]).await.expect("update");
        assert_eq!(n, 1, "UPDATE of user {k} found its row (0 = sent to a node without its shard)");
        assert_eq!(on(home.url.clone(), k).await, vec!["renamed".to_string()], "user {k} renamed on {}", home.addr());
        if !cluster.is_real() {
            assert_eq!(on(cluster.coordinator.url.clone(), k).await, vec![format!("user{k}")], "the coordinator's copy is untouched");
        }
        c.execute("UPDATE users SET username = $2 WHERE user_id = $1", &[&k, &format!("user{k}")]).await.expect("restore");

        let new = 900_000 + k;
        let target = cluster.node_of_user(new).clone();
        let n = c.execute("INSERT INTO users VALUES ($1, 'inserted', 'x@example.com')", &[&new]).await.expect("insert");
        assert_eq!(n, 1);
        assert_eq!(on(target.url.clone(), new).await, vec!["inserted".to_string()], "user {new} inserted on {}", target.addr());
        if !cluster.is_real() {
            assert!(on(cluster.coordinator.url.clone(), new).await.is_empty(), "user {new} inserted on the coordinator{}", hint_absent());
        }
        let n = c.execute("DELETE FROM users WHERE user_id = $1", &[&new]).await.expect("delete");
        assert_eq!(n, 1, "DELETE of user {new} found its row");
        assert!(on(target.url.clone(), new).await.is_empty(), "user {new} deleted on {}", target.addr());
    }
    p.stop().await;
}

#[tokio::test]
async fn what_is_not_single_shard_runs_on_the_coordinator() {
    let cluster = citus_nodes("sl_fallback");
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    let coord = cluster.coordinator.port.to_string();
    let workers_untouched = |what: &str, before: &std::collections::BTreeMap<String, f64>| {
        let rose = rise(before, &by_node(&p, SERVED));
        assert!(cluster.workers.iter().all(|w| !rose.contains_key(&label(w))), "{what} was served by a worker: {rose:?}");
        rose
    };

    // Multi-shard: the coordinator's full count (a node holds only part of the rows).
    let before = by_node(&p, SERVED);
    let r = simple_rows(&c, "SELECT count(*), inet_server_port() FROM users").await;
    assert_eq!(r[0][0].as_deref(), Some("5000"));
    let rose = workers_untouched("a multi-shard count", &before);
    assert!(rose.contains_key("coordinator"), "{SERVED}{{node=\"coordinator\"}} did not rise: {rose:?}{}", hint_absent());
    let n: i64 = c.query_one("SELECT count(*) FROM users WHERE user_id > $1", &[&0_i64]).await.unwrap().get(0);
    assert_eq!(n, 5000, "extended-protocol multi-shard count");

    // SET runs on the coordinator (and follows the client, see session_state_follows_…).
    let before = by_node(&p, SERVED);
    simple_rows(&c, "SET work_mem = '7MB'").await;
    workers_untouched("SET", &before);

    // A coordinator-only table.
    let before = by_node(&p, SERVED);
    assert_eq!(simple_one(&c, "SELECT count(*) FROM local_notes").await, "1000");
    workers_untouched("local_notes", &before);

    // A multi-statement Query, even one starting single-shard.
    let k = 42_i64;
    let r = simple_rows(&c, &format!("SELECT username FROM users WHERE user_id = {k}; SELECT inet_server_port()")).await;
    assert_eq!(r, vec![vec![Some(format!("user{k}"))], vec![Some(coord.clone())]], "a multi-statement Query runs on the coordinator");
    let r = simple_rows(&c, &format!("BEGIN; SELECT username FROM users WHERE user_id = {k}; SELECT inet_server_port(); COMMIT")).await;
    assert_eq!(r, vec![vec![Some(format!("user{k}"))], vec![Some(coord.clone())]], "BEGIN…COMMIT in one Query");

    // Unparsable SQL: the coordinator's own error, and the client goes on.
    let before = by_node(&p, SERVED);
    let e = c.simple_query(&format!("SELEKT username FROM users WHERE user_id = {k}")).await.expect_err("syntax error");
    assert_eq!(code(&e), "42601");
    workers_untouched("unparsable SQL", &before);

    // Statements touching no table, and a transaction opened by a multi-shard statement.
    assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, coord);
    simple_rows(&c, "BEGIN").await;
    assert_eq!(simple_one(&c, "SELECT count(*) FROM users").await, "5000");
    assert_eq!(simple_one(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await, format!("user{k}"));
    assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, coord, "a transaction opened multi-shard stays on the coordinator");
    simple_rows(&c, "COMMIT").await;
    // …and the next single-shard transaction goes to its node again.
    assert_tx_on(&c, k, cluster.node_of_user(k), "after the fallbacks").await;
    p.stop().await;
}

#[tokio::test]
async fn ddl_citus_functions_and_int_serial_inserts_run_on_the_coordinator() {
    let cluster = citus_nodes("sl_ddl");
    // Tables Citus would have created everywhere: one with an int `serial` column.
    cluster.run_everywhere(
        "CREATE TABLE scratch (id bigint PRIMARY KEY, v text); SELECT create_distributed_table('scratch', 'id');
         CREATE TABLE scratch2 (id bigint PRIMARY KEY);
         CREATE TABLE serial_t (id serial, user_id bigint, v text); SELECT create_distributed_table('serial_t', 'user_id');",
    );
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    let one = |url: String, sql: String| async move {
        let d = test_support::connect(&url).await;
        d.query_one(&sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e))).get::<_, i64>(0)
    };
    let everywhere = |sql: &'static str| {
        let urls: Vec<(String, String)> = cluster.all().map(|n| (n.addr(), n.url.clone())).collect();
        async move {
            let mut out = Vec::new();
            for (addr, url) in urls {
                out.push((addr, one(url, sql.to_string()).await));
            }
            out
        }
    };
    let only_coordinator = |got: Vec<(String, i64)>, what: &str| {
        let want: Vec<(String, i64)> = cluster.all().map(|n| (n.addr(), i64::from(n.group == 0))).collect();
        assert_eq!(got, want, "{what}: (node, found) everywhere — it must have run on the coordinator only");
    };

    simple_rows(&c, "CREATE INDEX scratch_v_idx ON scratch (v)").await;
    only_coordinator(everywhere("SELECT count(*) FROM pg_indexes WHERE indexname = 'scratch_v_idx'").await, "CREATE INDEX");
    c.execute("ALTER TABLE scratch ADD COLUMN w int", &[]).await.expect("alter");
    only_coordinator(
        everywhere("SELECT count(*) FROM pg_attribute WHERE attrelid = 'scratch'::regclass AND attname = 'w' AND NOT attisdropped").await,
        "ALTER TABLE",
    );
    simple_rows(&c, "SELECT create_distributed_table('scratch2', 'id')").await;
    only_coordinator(
        everywhere("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'scratch2'::regclass").await,
        "a Citus function",
    );

    // The proxy's metadata must know serial_t (created before it started).
    let k = 42_i64;
    let node = cluster.node_of("serial_t", k).clone();
    c.execute("INSERT INTO serial_t (user_id, v) VALUES ($1, 'by default')", &[&k]).await.expect("insert relying on serial");
    only_coordinator(everywhere("SELECT count(*) FROM serial_t WHERE v = 'by default'").await, "an INSERT relying on an int serial");
    simple_rows(&c, &format!("INSERT INTO serial_t (user_id, v) VALUES ({k}, 'by default, simple')")).await;
    only_coordinator(everywhere("SELECT count(*) FROM serial_t WHERE v = 'by default, simple'").await, "the same, simple protocol");
    c.execute("INSERT INTO serial_t (id, user_id, v) VALUES (1000, $1, 'named')", &[&k]).await.expect("insert naming the column");
    let found = everywhere("SELECT count(*) FROM serial_t WHERE v = 'named'").await;
    let want: Vec<(String, i64)> = cluster.all().map(|n| (n.addr(), i64::from(n.group == node.group))).collect();
    assert_eq!(found, want, "an INSERT naming the serial column runs on the node of its key ({}){}", node.addr(), hint_absent());
    p.stop().await;
}

#[tokio::test]
async fn metadata_not_synced_on_a_node_sends_its_keys_to_the_coordinator() {
    let cluster = citus_nodes("sl_unsynced");
    let p = shard_local_proxy(&cluster, &[("metadata.probe_interval", "1s"), ("metadata.refresh_interval", "2s")]).await;
    let c = client(&p, &cluster).await;
    let (g1, g2) = (users_on(&cluster, 1, 20), users_on(&cluster, 2, 20));
    assert_tx_on(&c, g1[0], cluster.node(1), "synced").await;
    cluster.set_metadata_synced(1, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (names, port) = tx_on_user(&c, g1[0]).await;
        assert_eq!(names, vec![format!("user{}", g1[0])], "answers stay right meanwhile (port {port})");
        if port == cluster.coordinator.port {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "group 1's keys still go to it 20 s after metadatasynced = false");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for &k in &g1 {
        assert_tx_on(&c, k, &cluster.coordinator, "group 1 not synced").await;
    }
    for &k in &g2 {
        assert_tx_on(&c, k, cluster.node(2), "group 2 still synced").await;
    }
    p.stop().await;
}

#[tokio::test]
async fn session_state_follows_the_client_to_the_node() {
    let cluster = citus_nodes("sl_state");
    let p = shard_local_proxy(&cluster, &[]).await;
    let c = client(&p, &cluster).await;
    simple_rows(&c, "SET application_name = 'sl_state_app'").await;
    simple_rows(&c, "SET search_path = pg_catalog, public").await;
    for k in [1_i64, 2, 42] {
        let home = cluster.node_of_user(k);
        simple_rows(&c, "BEGIN").await;
        assert_eq!(simple_one(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await, format!("user{k}"));
        assert_eq!(simple_one(&c, "SHOW application_name").await, "sl_state_app", "on the node of {k}");
        assert_eq!(simple_one(&c, "SHOW search_path").await, "pg_catalog, public", "on the node of {k}");
        assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, home.port.to_string(), "user {k}{}", hint_absent());
        simple_rows(&c, "COMMIT").await;
    }
    p.stop().await;
}

#[tokio::test]
async fn a_prepared_statement_answers_right_on_every_node() {
    let cluster = citus_nodes("sl_prepared");
    let p = shard_local_proxy(&cluster, &[]).await;
    let mut c = client(&p, &cluster).await;
    let st = c.prepare(BY_KEY).await.expect("prepare");
    let keys: Vec<i64> = users_on(&cluster, 1, 10).into_iter().chain(users_on(&cluster, 2, 10)).collect();
    for round in 0..2 {
        for &k in &keys {
            let got: Vec<(String, i32)> = c.query(&st, &[&k]).await.expect("execute").iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_answer(&cluster, &got, k, cluster.node_of_user(k).port, &format!("prepared, round {round}"));
        }
    }
    // The same statement inside a transaction placed on the coordinator.
    let tx = c.transaction().await.expect("begin");
    let n: i64 = tx.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
    assert_eq!(n, 5000);
    for &k in &keys {
        let got: Vec<(String, i32)> = tx.query(&st, &[&k]).await.expect("execute").iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got.len(), 1, "user {k} on the coordinator");
        let port: i32 = tx.query_one("SELECT inet_server_port()", &[]).await.unwrap().get(0);
        assert_eq!(port, i32::from(cluster.coordinator.port));
    }
    tx.commit().await.expect("commit");
    p.stop().await;
}

#[tokio::test]
async fn spread_reads_use_every_node_with_metadata_outside_transactions() {
    let cluster = citus_nodes("sl_spread");
    let p = shard_local_proxy(&cluster, &[("routing.spread_reads", "true")]).await;
    let c = client(&p, &cluster).await;
    let before = by_node(&p, SERVED);
    let mut ports = BTreeSet::new();
    for _ in 0..9 {
        let r = simple_rows(&c, "SELECT count(*), inet_server_port() FROM users").await;
        ports.insert(r[0][1].clone().unwrap_or_default().parse::<u16>().unwrap());
        let r = c.query_one("SELECT count(*), inet_server_port() FROM users WHERE user_id > $1", &[&0_i64]).await.unwrap();
        ports.insert(u16::try_from(r.get::<_, i32>(1)).unwrap());
    }
    let rose = rise(&before, &by_node(&p, SERVED));
    for n in cluster.all() {
        assert!(rose.contains_key(&label(n)), "{} served no spread read: {rose:?} (routing.spread_reads, issue #13)", label(n));
        if !cluster.is_real() {
            assert!(ports.contains(&n.port), "no multi-shard read ran on {}: ports {ports:?}", n.addr());
        }
    }
    // Inside a transaction: the coordinator, with the full count.
    simple_rows(&c, "BEGIN").await;
    assert_eq!(simple_one(&c, "SELECT count(*) FROM users").await, "5000");
    assert_eq!(simple_one(&c, "SELECT inet_server_port()").await, cluster.coordinator.port.to_string());
    simple_rows(&c, "COMMIT").await;
    p.stop().await;
}

#[tokio::test]
async fn show_pools_lists_a_pool_per_node() {
    let cluster = citus_nodes("sl_pools");
    let su = test_support::postgres().superuser();
    let p = shard_local_proxy(&cluster, &[("admin.users", su)]).await;
    let c = client(&p, &cluster).await;
    for k in [users_on(&cluster, 1, 10)[0], users_on(&cluster, 2, 10)[0]] {
        assert_tx_on(&c, k, cluster.node_of_user(k), "warm-up").await;
    }
    simple_rows(&c, "SELECT count(*) FROM users").await;
    let admin = common::pool::connect_db(&p, "citus_proxy").await;
    let msgs = admin.simple_query("SHOW POOLS").await.expect("SHOW POOLS");
    let mut nodes = BTreeSet::new();
    for m in &msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let cols: Vec<&str> = r.columns().iter().map(|c| c.name()).collect();
            assert_eq!(cols.last(), Some(&"node"), "SHOW POOLS' last column is `node`: {cols:?}");
            assert_eq!(r.get("database"), Some(cluster.database.as_str()));
            assert_eq!(r.get("pool_mode"), Some("transaction"));
            nodes.insert(r.get("node").unwrap_or_default().to_string());
        }
    }
    let want: BTreeSet<String> = cluster.all().map(label).collect();
    assert_eq!(nodes, want, "one pool per node that served (coordinator and host:port)");
    p.stop().await;
}

#[tokio::test]
async fn scram_clients_reach_the_nodes_with_the_same_secrets() {
    let cluster = citus_nodes("sl_scram");
    if cluster.is_real() {
        // Citus propagates the role, its SCRAM secret and the grant to every node.
        let sql =
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cp_scram') THEN CREATE ROLE cp_scram LOGIN; END IF; END $$;
                   SET password_encryption = 'scram-sha-256'; ALTER ROLE cp_scram PASSWORD 'pw-scram'; GRANT SELECT ON users TO cp_scram;";
        test_support::connect(&cluster.coordinator.url).await.batch_execute(sql).await.expect("cp_scram on the real cluster");
    } else {
        cluster.run_everywhere("GRANT SELECT ON users TO cp_scram");
    }
    let su = test_support::postgres().superuser();
    let p = proxy_on(
        &cluster,
        &[("pool.mode", "transaction"), ("auth.type", "scram-sha-256"), ("auth.user", su), ("routing.shard_local", "true")],
    )
    .await;
    let url = p.url_for("cp_scram", Some("pw-scram"), &cluster.database);
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("SCRAM login through the proxy");
    tokio::spawn(conn);
    for k in [users_on(&cluster, 1, 10)[0], users_on(&cluster, 2, 10)[0]] {
        assert_tx_on(&c, k, cluster.node_of_user(k), "cp_scram").await;
        simple_rows(&c, "BEGIN").await;
        simple_rows(&c, &format!("SELECT username FROM users WHERE user_id = {k}")).await;
        assert_eq!(simple_one(&c, "SELECT current_user").await, "cp_scram", "the node connection logs in as the client's role");
        simple_rows(&c, "COMMIT").await;
    }
    p.stop().await;
}

/// Runs the binary with `args`; a server that starts instead of refusing is stopped after 10 s.
fn run_binary(args: &[&str]) -> (Option<i32>, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run citus-proxy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status, err)
}

#[test]
fn shard_local_and_spread_reads_need_transaction_pooling() {
    let dir = std::env::temp_dir().join(format!("citus-proxy-shard-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let good = write(
        "good.toml",
        "[auth]\ntype = \"trust\"\n[pool]\nmode = \"transaction\"\n[routing]\nshard_local = true\nspread_reads = true\n",
    );
    let (code, err) = run_binary(&["--config", &good, "check-config"]);
    assert_eq!(code, Some(0), "shard_local and spread_reads with pool.mode = transaction are valid{}:\n{err}", hint_absent());
    for (key, mode) in [("shard_local", "session"), ("spread_reads", "off"), ("shard_local", "off")] {
        let file = write(
            &format!("{key}-{mode}.toml"),
            &format!("[auth]\ntype = \"trust\"\n[pool]\nmode = \"{mode}\"\n[routing]\n{key} = true\n"),
        );
        for args in [vec!["--config", file.as_str(), "check-config"], vec!["--config", file.as_str(), "--metrics-listen", "off"]] {
            let (code, err) = run_binary(&args);
            assert_eq!(code, Some(2), "{args:?}: routing.{key} with pool.mode = {mode} must be refused at start:\n{err}");
            assert!(err.contains(&format!("routing.{key}")) && err.contains("pool.mode"), "{args:?}: the error names both keys:\n{err}");
        }
    }
}

#[tokio::test]
async fn the_route_notice_says_which_server_served_the_statement() {
    let cluster = citus_nodes("sl_notice");
    let p = shard_local_proxy(&cluster, &[]).await;
    let k = 42_i64;
    let home = cluster.node_of_user(k);
    let conninfo = p.conninfo(&cluster.database);
    // psql blocks: it runs off the runtime that serves the proxy.
    let run = |sql: String| {
        let conninfo = conninfo.clone();
        async move {
            let (ok, _, stderr) =
                tokio::task::spawn_blocking(move || common::psql(&conninfo, &["-c", "SET citus_proxy.report_routing = on", "-c", &sql]))
                    .await
                    .expect("psql task");
            assert!(ok, "psql: {stderr}");
            stderr
        }
    };
    let single = run(format!("SELECT username FROM users WHERE user_id = {k}")).await;
    assert!(
        single.contains("citus-proxy route: single-shard") && single.contains(&format!("(served by {})", home.addr())),
        "the NOTICE of a single-shard statement names its node {}: {single}",
        home.addr()
    );
    let multi = run("SELECT count(*) FROM users".to_string()).await;
    assert!(multi.contains("citus-proxy route: multi-shard") && multi.contains("(served by coordinator)"), "multi-shard: {multi}");
    p.stop().await;
}
