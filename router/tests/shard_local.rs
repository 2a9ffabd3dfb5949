//! Shard-local placement over the real cluster's metadata (test-support/citus/metadata): a
//! transaction's first statement goes to the primary holding its shard only when that node can
//! run it exactly as the coordinator would; every other case names why it stays put.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::catalog::{CatalogRows, ColumnRow, PlacementRow, ShardRow};
use citus_proxy_router::{shard_local, spreadable, CoordinatorWhy, Decision, Placement, Router, Topology};

const PATH: &[&str] = &["public"];

fn decide(router: &Router, topo: &Topology, sql: &str) -> Decision {
    router.route_query_with(sql, topo, PATH, false)
}

fn place(topo: &Topology, sql: &str) -> Placement {
    shard_local(&decide(&Router::new(64), topo, sql), topo, PATH)
}

/// The node's address for `Node`, the reason's label otherwise.
fn outcome(topo: &Topology, p: Placement) -> String {
    match p {
        Placement::Node(i) => topo.node(i).map_or_else(|| format!("bad node index {i}"), |n| n.addr().to_string()),
        Placement::Coordinator(why) => format!("coordinator: {why}"),
    }
}

fn check(topo: &Topology, cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(sql, want)| {
            let got = outcome(topo, place(topo, sql));
            (got != *want).then(|| format!("{sql}\n  got  {got}\n  want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fixture plus `tickets (ticket_id serial, user_id bigint, note text, rank smallint)`,
/// co-located with users (same ranges, same placements, shard ids + 800000).
fn with_tickets(mut rows: CatalogRows) -> CatalogRows {
    const OFFSET: i64 = 800_000;
    let users = rows.partitions.iter().find(|p| p.table == "users").cloned().expect("users partition");
    rows.partitions.push(citus_proxy_router::catalog::PartitionRow { table: "tickets".into(), ..users });
    let shards: Vec<ShardRow> = rows.shards.iter().filter(|s| s.table == "users").cloned().collect();
    let placements: Vec<PlacementRow> =
        rows.placements.iter().filter(|p| shards.iter().any(|s| s.shard_id == p.shard_id)).cloned().collect();
    rows.shards.extend(shards.into_iter().map(|s| ShardRow { table: "tickets".into(), shard_id: s.shard_id + OFFSET, ..s }));
    rows.placements.extend(placements.into_iter().map(|p| PlacementRow {
        placement_id: p.placement_id + OFFSET,
        shard_id: p.shard_id + OFFSET,
        ..p
    }));
    for (attnum, name, oid, has_default, int_seq) in
        [(1, "ticket_id", 23, true, true), (2, "user_id", 20, false, false), (3, "note", 25, false, false), (4, "rank", 21, true, false)]
    {
        rows.columns.push(ColumnRow {
            schema: "public".into(),
            table: "tickets".into(),
            attnum,
            name: name.into(),
            type_oid: oid,
            has_default,
            int_sequence_default: int_seq,
        });
    }
    rows
}

#[test]
fn single_shard_statements_go_to_the_primary_holding_the_shard() {
    let topo = common::topology();
    // users.user_id = 42 → shard 102035 on 9702 (routing-examples R001); 7 → 102014 on 9701.
    check(
        &topo,
        &[
            ("SELECT * FROM users WHERE user_id = 42", "127.0.0.1:9702"),
            ("SELECT * FROM users WHERE user_id = 42 FOR UPDATE", "127.0.0.1:9702"),
            ("UPDATE users SET email = 'x' WHERE user_id = 42", "127.0.0.1:9702"),
            ("DELETE FROM users WHERE user_id = 42", "127.0.0.1:9702"),
            ("SELECT now(), random() FROM users WHERE user_id = 42", "127.0.0.1:9702"),
            ("INSERT INTO users (user_id, username) VALUES (7, 'seven')", "127.0.0.1:9701"),
            // events.event_id is bigserial: workers evaluate bigint sequence defaults.
            ("INSERT INTO events (user_id, kind) VALUES (42, 'x') RETURNING event_id", "127.0.0.1:9702"),
            ("INSERT INTO events (user_id, event_id, kind) VALUES (42, DEFAULT, 'x')", "127.0.0.1:9702"),
        ],
    );
}

#[test]
fn every_single_shard_routing_example_goes_to_its_node() {
    let topo = common::topology();
    let router = Router::new(256);
    let mut checked = 0;
    let mut failures = Vec::new();
    for r in common::tsv("routing-examples.tsv") {
        let field = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
        if field("route") != "single-shard" {
            continue;
        }
        let (sql, want, params) = (field("sql"), field("nodes"), field("params"));
        let d = if params == "-" {
            decide(&router, &topo, &sql)
        } else {
            let prepared = router.prepare(&sql, &[]);
            let values: Vec<&[u8]> = params.split('|').map(str::as_bytes).collect();
            let bound: Vec<Option<&[u8]>> = values.iter().map(|v| Some(*v)).collect();
            router.route_bound_with(&prepared, &bound, &[], &topo, PATH, false)
        };
        let got = outcome(&topo, shard_local(&d, &topo, PATH));
        if got != want {
            failures.push(format!("{} {sql}: got {got}, want {want}", field("id")));
        }
        checked += 1;
    }
    assert!(checked >= 39, "routing-examples.tsv has 39 single-shard rows, checked {checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shard_map_examples_go_to_their_nodes() {
    let topo = common::topology();
    let router = Router::new(1024);
    let mut failures = Vec::new();
    let rows = common::tsv("shard-map-examples.tsv");
    for r in &rows {
        let field = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
        let table = field("table");
        let column = topo.table_by_name("public", &table).and_then(|t| t.dist_column.as_ref()).expect("distribution column").name.clone();
        let sql = format!("SELECT * FROM {table} WHERE {column} = '{}'", field("value").replace('\'', "''"));
        let got = outcome(&topo, shard_local(&decide(&router, &topo, &sql), &topo, PATH));
        if got != field("node") {
            failures.push(format!("{sql}: got {got}, want {}", field("node")));
        }
    }
    assert!(rows.len() > 250, "shard-map-examples.tsv read: {} rows", rows.len());
    assert!(failures.is_empty(), "{} of {}:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

#[test]
fn statements_that_stay_on_the_coordinator_say_why() {
    let topo = common::topology();
    check(
        &topo,
        &[
            ("SELECT * FROM users", "coordinator: not-single-shard"),
            ("SELECT count(*) FROM users WHERE user_id IN (1, 2, 3)", "coordinator: not-single-shard"),
            ("SELECT * FROM config WHERE key = 'k1'", "coordinator: not-single-shard"),
            ("SELECT * FROM local_notes WHERE id = 1", "coordinator: not-single-shard"),
            ("SELECT 1", "coordinator: not-single-shard"),
            ("ALTER TABLE users ADD COLUMN x int", "coordinator: not-dml"),
            ("CREATE TABLE t (x int)", "coordinator: not-dml"),
            ("SET search_path TO public", "coordinator: not-dml"),
            ("BEGIN", "coordinator: not-dml"),
            ("COMMIT", "coordinator: not-dml"),
            ("TRUNCATE users", "coordinator: not-dml"),
            ("COPY users TO STDOUT", "coordinator: not-dml"),
            ("VACUUM users", "coordinator: not-dml"),
            ("SELECT citus_move_shard_placement(102035, '127.0.0.1', 9702, '127.0.0.1', 9701)", "coordinator: citus-function"),
            ("SELECT *, citus_version() FROM users WHERE user_id = 42", "coordinator: citus-function"),
            ("SELECT *, pg_catalog.CITUS_VERSION() FROM users WHERE user_id = 42", "coordinator: citus-function"),
            ("SELECT *, \"Citus_Version\"() FROM users WHERE user_id = 42", "coordinator: citus-function"),
            ("SELECT get_shard_id_for_distribution_column('users', 42), master_get_table_metadata('users')", "coordinator: citus-function"),
            ("SELECT run_command_on_workers('SELECT 1') FROM users WHERE user_id = 42", "coordinator: citus-function"),
            ("SELECT * FROM users WHERE user_id = 42 AND username IN (SELECT relname FROM pg_class)", "coordinator: catalog"),
            ("SELECT * FROM users u WHERE user_id = 42 AND EXISTS (SELECT 1 FROM local_notes)", "coordinator: local-relation"),
            ("SELECT nextval('s') FROM users WHERE user_id = 42", "coordinator: sequence-call"),
            ("SELECT * FROM users WHERE user_id = 42; SELECT * FROM users WHERE user_id = 42", "coordinator: several-statements"),
            ("BEGIN; SELECT * FROM users WHERE user_id = 42", "coordinator: several-statements"),
            ("SELEC * FROM users WHERE user_id = 42", "coordinator: not-dml"),
        ],
    );
}

#[test]
fn int_and_smallint_sequence_defaults_stay_on_the_coordinator() {
    let topo = Topology::build(with_tickets(common::catalog_rows())).expect("topology");
    let t = topo.table_by_name("public", "tickets").expect("tickets");
    assert!(t.columns.iter().any(|c| c.name == "ticket_id" && c.int_sequence_default));
    // user_id = 42 → shard index 27, on 9702 like users' 102035.
    check(
        &topo,
        &[
            ("INSERT INTO tickets (user_id, note) VALUES (42, 'x')", "coordinator: int-sequence-default"),
            ("INSERT INTO tickets (ticket_id, user_id, note) VALUES (DEFAULT, 42, 'x')", "coordinator: int-sequence-default"),
            ("INSERT INTO tickets VALUES (DEFAULT, 42, 'x')", "coordinator: int-sequence-default"),
            ("INSERT INTO tickets (user_id) SELECT user_id FROM users WHERE user_id = 42", "coordinator: int-sequence-default"),
            ("UPDATE tickets SET ticket_id = DEFAULT WHERE user_id = 42", "coordinator: int-sequence-default"),
            ("INSERT INTO tickets (ticket_id, user_id, note) VALUES (1, 42, 'x')", "127.0.0.1:9702"),
            ("INSERT INTO tickets VALUES (1, 42, 'x')", "127.0.0.1:9702"),
            ("INSERT INTO tickets (user_id, ticket_id) SELECT user_id, 5 FROM users WHERE user_id = 42", "127.0.0.1:9702"),
            ("UPDATE tickets SET note = 'y', ticket_id = 3 WHERE user_id = 42", "127.0.0.1:9702"),
            ("SELECT * FROM tickets WHERE user_id = 42", "127.0.0.1:9702"),
            ("DELETE FROM tickets WHERE user_id = 42", "127.0.0.1:9702"),
        ],
    );
    // Without the columns in the snapshot the defaults are unknown.
    let mut rows = with_tickets(common::catalog_rows());
    rows.columns.clear();
    let topo = Topology::build(rows).expect("topology");
    check(&topo, &[("INSERT INTO tickets (ticket_id, user_id) VALUES (1, 42)", "coordinator: columns-unknown")]);
}

#[test]
fn nodes_without_current_metadata_or_the_coordinator_keep_the_statement() {
    let sql = "SELECT * FROM users WHERE user_id = 42";
    let mut rows = common::catalog_rows();
    for n in rows.nodes.iter_mut().filter(|n| n.port == 9702) {
        n.metadata_synced = false;
    }
    let topo = Topology::build(rows).expect("topology");
    check(&topo, &[(sql, "coordinator: node-without-metadata"), ("SELECT * FROM users WHERE user_id = 7", "127.0.0.1:9701")]);

    let mut rows = common::catalog_rows();
    for n in rows.nodes.iter_mut().filter(|n| n.port == 9702) {
        n.has_metadata = false;
    }
    check(&Topology::build(rows).expect("topology"), &[(sql, "coordinator: node-without-metadata")]);

    // Shard 102035 moved to the coordinator's group.
    let mut rows = common::catalog_rows();
    for p in rows.placements.iter_mut().filter(|p| p.shard_id == 102035) {
        p.group_id = 0;
    }
    check(&Topology::build(rows).expect("topology"), &[(sql, "coordinator: on-coordinator")]);

    // orders' shard co-located with 102035 (index 27: 102100) moved alone to 9701.
    let mut rows = common::catalog_rows();
    for p in rows.placements.iter_mut().filter(|p| p.shard_id == 102100) {
        p.group_id = 1;
    }
    check(
        &Topology::build(rows).expect("topology"),
        &[("SELECT * FROM users u JOIN orders o ON u.user_id = o.user_id WHERE u.user_id = 42", "coordinator: shards-apart")],
    );

    // No active placement.
    let mut rows = common::catalog_rows();
    rows.placements.retain(|p| p.shard_id != 102035);
    check(&Topology::build(rows).expect("topology"), &[(sql, "coordinator: no-placement")]);
}

#[test]
fn query_nodes_are_the_nodes_with_current_metadata_in_node_id_order() {
    let topo = common::topology();
    let addrs = |t: &Topology| t.query_nodes().iter().map(|i| t.node(*i).expect("node").addr().to_string()).collect::<Vec<_>>();
    assert_eq!(addrs(&topo), ["127.0.0.1:9700", "127.0.0.1:9701", "127.0.0.1:9702"]);
    assert!(topo.nodes().iter().all(|n| n.plans_queries()));
    assert!(topo.nodes()[0].is_coordinator() && !topo.nodes()[1].is_coordinator());
    // Shared address: the same allocation every time it is asked for.
    let a = topo.nodes()[1].addr_shared();
    assert!(std::sync::Arc::ptr_eq(a, topo.nodes()[1].addr_shared()));
    assert_eq!(&**a, "127.0.0.1:9701");

    let mut rows = common::catalog_rows();
    rows.nodes.reverse();
    for n in rows.nodes.iter_mut() {
        match n.port {
            9701 => n.metadata_synced = false,
            9700 => n.has_metadata = false,
            _ => {}
        }
    }
    rows.nodes.push(citus_proxy_router::catalog::NodeRow {
        node_id: 4,
        group_id: 3,
        host: "127.0.0.1".into(),
        port: 9703,
        active: true,
        role: "primary".into(),
        cluster: "default".into(),
        should_have_shards: true,
        has_metadata: true,
        metadata_synced: true,
    });
    rows.nodes.push(citus_proxy_router::catalog::NodeRow {
        node_id: 5,
        group_id: 4,
        host: "127.0.0.1".into(),
        port: 9704,
        active: false,
        role: "primary".into(),
        cluster: "default".into(),
        should_have_shards: true,
        has_metadata: true,
        metadata_synced: true,
    });
    let topo = Topology::build(rows).expect("topology");
    assert_eq!(addrs(&topo), ["127.0.0.1:9702", "127.0.0.1:9703"], "node id order, only active primaries with synced metadata");
}

#[test]
fn only_plain_multi_shard_reads_are_spreadable() {
    let topo = common::topology();
    let router = Router::new(64);
    let spread = |sql: &str| spreadable(&decide(&router, &topo, sql), &topo, PATH);
    for sql in [
        "SELECT count(*) FROM users",
        "SELECT * FROM users WHERE user_id IN (1, 2, 3)",
        "SELECT u.username, count(*) FROM users u JOIN orders o USING (user_id) GROUP BY u.username",
        "SELECT lower(username) FROM users WHERE username LIKE 'user1%'",
        // A varying answer varies on the coordinator too; every node has the function.
        "SELECT random() FROM users",
        "SELECT now(), count(*) FROM users",
        "SELECT count(*), inet_server_port() FROM users",
    ] {
        assert!(spread(sql), "spreadable: {sql}");
    }
    for sql in [
        "SELECT * FROM users FOR UPDATE",
        "SELECT * FROM users FOR SHARE",
        "UPDATE users SET email = 'x'",
        "DELETE FROM users",
        "INSERT INTO users SELECT * FROM users",
        "SELECT nextval('s') FROM users",
        "SELECT citus_version(), count(*) FROM users",
        "SELECT * FROM users WHERE user_id = 42",
        "SELECT * FROM config",
        "SELECT * FROM local_notes",
        "SELECT * FROM users u JOIN local_notes l ON l.id = u.user_id",
        "SELECT count(*) FROM users WHERE username IN (SELECT relname FROM pg_class)",
        "SELECT count(*) FROM users; SELECT count(*) FROM users",
        "ALTER TABLE users ADD COLUMN x int",
        "SELECT count(*) INTO t FROM users",
    ] {
        assert!(!spread(sql), "not spreadable: {sql}");
    }
}

#[test]
fn reasons_have_stable_distinct_labels() {
    let labels: Vec<&str> = CoordinatorWhy::ALL.iter().map(|w| w.as_str()).collect();
    let mut unique = labels.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), labels.len(), "{labels:?}");
    for (i, w) in CoordinatorWhy::ALL.iter().enumerate() {
        assert_eq!(w.index(), i);
        assert_eq!(w.to_string(), w.as_str());
    }
}
