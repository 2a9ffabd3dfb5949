//! The catalog queries run unchanged against the Citus fixture (plain PostgreSQL holding Citus's
//! catalog tables and the real cluster's rows), or a real coordinator when configured, and give
//! the same topology as the dumped TSVs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::catalog::{
    CatalogRows, ColumnRow, NodeRow, PartitionRow, PlacementRow, RelationRow, ShardRow, COLUMNS_SQL, NODES_SQL, PARTITIONS_SQL,
    PLACEMENTS_SQL, RELATIONS_SQL, SHARDS_SQL,
};
use citus_proxy_router::{Router, Topology};
use tokio_postgres::SimpleQueryMessage;

async fn rows<T>(
    c: &tokio_postgres::Client,
    sql: &str,
    parse: fn(&[Option<&str>]) -> Result<T, citus_proxy_router::CatalogError>,
) -> Vec<T> {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                let cols: Vec<Option<&str>> = (0..r.len()).map(|i| r.get(i)).collect();
                Some(parse(&cols).unwrap_or_else(|e| panic!("{sql}: {e}")))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn catalog_queries_build_the_same_topology() {
    let cluster = test_support::citus();
    let c = test_support::connect(cluster.url()).await;
    let fetched = CatalogRows {
        partitions: rows(&c, PARTITIONS_SQL, PartitionRow::from_text).await,
        shards: rows(&c, SHARDS_SQL, ShardRow::from_text).await,
        placements: rows(&c, PLACEMENTS_SQL, PlacementRow::from_text).await,
        nodes: rows(&c, NODES_SQL, NodeRow::from_text).await,
        relations: rows(&c, RELATIONS_SQL, RelationRow::from_text).await,
        columns: rows(&c, COLUMNS_SQL, ColumnRow::from_text).await,
    };
    let live = Topology::build(fetched).expect("topology from the catalog queries");
    let dumped = common::topology();
    assert_eq!(live.tables().len(), dumped.tables().len());
    for t in dumped.tables() {
        let l = live.table_by_name(&t.schema, &t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((l.kind, l.colocation_id, &l.dist_column), (t.kind, t.colocation_id, &t.dist_column), "{}", t.name);
        assert_eq!(l.shards, t.shards, "{} shards/placements", t.name);
        assert_eq!(l.columns, t.columns, "{} columns", t.name);
    }
    assert_eq!(live.nodes(), dumped.nodes());
    assert!(live.warnings().is_empty(), "{:?}", live.warnings());
    let router = Router::new(64);
    let d = router.route_query("SELECT * FROM local_notes", &live, &["public"]);
    assert_eq!(d.route.word(), "local", "local tables come from RELATIONS_SQL");
    let d = router.route_query("SELECT * FROM users WHERE user_id = 42", &live, &["public"]);
    assert_eq!(d.route.shard_ids(), vec![102035]);
}

async fn fingerprint(c: &tokio_postgres::Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("fingerprint: {}", test_support::describe(&e)));
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("one row")
}

/// The change probe's fingerprint moves with every change the snapshot depends on and stays put
/// under maintenance that changes nothing (VACUUM, ANALYZE).
#[tokio::test]
async fn the_fingerprint_changes_with_the_catalog_and_only_then() {
    use citus_proxy_router::catalog::{FINGERPRINT_SQL, PLAIN_FINGERPRINT_SQL};
    let url = test_support::citus().private_copy("citus_fingerprint");
    let c = test_support::connect(&url).await;
    let mut last = fingerprint(&c, FINGERPRINT_SQL).await;
    // One statement per call: a multi-statement text is one transaction, where VACUUM refuses.
    for sql in ["VACUUM ANALYZE users", "ANALYZE pg_catalog.pg_dist_placement", "VACUUM pg_catalog.pg_dist_shard"] {
        c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", test_support::describe(&e)));
    }
    assert_eq!(fingerprint(&c, FINGERPRINT_SQL).await, last, "VACUUM / ANALYZE must not look like a change");
    for (what, sql) in [
        ("shard move (placement group rewritten)", "UPDATE pg_dist_placement SET groupid = 1 WHERE shardid = 102035"),
        ("move back", "UPDATE pg_dist_placement SET groupid = 2 WHERE shardid = 102035"),
        (
            "placement re-created",
            "DELETE FROM pg_dist_placement WHERE shardid = 102036; \
             INSERT INTO pg_dist_placement (placementid, shardid, shardstate, shardlength, groupid) VALUES (990036, 102036, 1, 0, 1)",
        ),
        ("node added", "INSERT INTO pg_dist_node (nodeid, groupid, nodename, nodeport) VALUES (9, 3, '127.0.0.1', 9703)"),
        ("node disabled", "UPDATE pg_dist_node SET isactive = false WHERE nodeid = 9"),
        ("node removed", "DELETE FROM pg_dist_node WHERE nodeid = 9"),
        ("local table created", "CREATE TABLE fp_local (x int)"),
        ("table distributed", "SELECT create_distributed_table('fp_local', 'x')"),
        ("column added to a Citus table", "ALTER TABLE users ADD COLUMN fp_extra int"),
        ("column dropped from a Citus table", "ALTER TABLE users DROP COLUMN fp_extra"),
        ("table renamed", "ALTER TABLE local_notes RENAME TO local_notes_renamed"),
    ] {
        c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{what}: {}", test_support::describe(&e)));
        let now = fingerprint(&c, FINGERPRINT_SQL).await;
        assert_ne!(now, last, "{what} must change the fingerprint");
        last = now;
    }
    // A database without the Citus catalog: its own, smaller fingerprint.
    let plain = test_support::postgres().fresh_database("plain_fingerprint");
    let p = test_support::connect(&plain).await;
    let before = fingerprint(&p, PLAIN_FINGERPRINT_SQL).await;
    assert!(before.starts_with("f "), "no Citus catalog there: {before}");
    p.batch_execute("CREATE TABLE t (x int)").await.expect("create");
    assert_ne!(fingerprint(&p, PLAIN_FINGERPRINT_SQL).await, before);
}

/// COLUMNS_SQL's 7th column: int2/int4 columns whose default draws from a sequence (serial,
/// smallserial, `DEFAULT nextval(…)`, identity), which workers refuse to evaluate; bigint ones and
/// plain defaults are not flagged. Run inside a transaction that is rolled back, so the shared
/// coordinator (fixture or real) is left as it was.
#[tokio::test]
async fn columns_sql_flags_int_sequence_defaults() {
    let cluster = test_support::citus();
    let c = test_support::connect(cluster.url()).await;
    let mut setup = String::from("BEGIN;\n");
    if cluster.is_real() {
        // Citus creates distributed tables with sequences in a transaction block only sequentially.
        setup.push_str("SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\n");
    }
    setup.push_str(
        "CREATE SEQUENCE slr_probe_seq;
         CREATE TABLE slr_probe (
             tenant bigint NOT NULL,
             a serial,
             b bigserial,
             c smallint DEFAULT nextval('slr_probe_seq'),
             d int DEFAULT 0,
             e int GENERATED BY DEFAULT AS IDENTITY,
             f bigint GENERATED BY DEFAULT AS IDENTITY,
             g text);
         SELECT create_distributed_table('slr_probe', 'tenant');",
    );
    c.batch_execute(&setup).await.unwrap_or_else(|e| panic!("create the probe table: {}", test_support::describe(&e)));
    let columns = rows(&c, COLUMNS_SQL, ColumnRow::from_text).await;
    c.batch_execute("ROLLBACK").await.expect("rollback");
    let flagged: Vec<(&str, bool)> =
        columns.iter().filter(|r| r.table == "slr_probe").map(|r| (r.name.as_str(), r.int_sequence_default)).collect();
    assert_eq!(
        flagged,
        [("tenant", false), ("a", true), ("b", false), ("c", true), ("d", false), ("e", true), ("f", false), ("g", false)],
        "int_sequence_default per column of slr_probe"
    );
    assert!(columns.iter().filter(|r| r.table == "events").all(|r| !r.int_sequence_default), "events.event_id is bigserial");
}
