//! `citus-fixture`: the multi-node Citus fixture ([`test_support::citus_nodes`]) as a process of
//! its own, for benchmarks. It prints one `KEY=value` line per fact (coordinator URL, each node's
//! URL and address, the database name), then waits until its stdin closes; the harness's reaper
//! stops the PostgreSQL instances once this process is gone.
//!
//! `--hop fdw` models the hop Citus's coordinator makes for a single-shard statement: every node's
//! `users` (and `orders`, `events`) becomes a full copy, and the coordinator's `users` becomes a table
//! hash-partitioned on `user_id` whose partitions are postgres_fdw foreign tables on the nodes. A
//! point select through the coordinator then pays a planner pass plus a remote execution on one
//! node, while the `pg_dist_*` rows (re-pointed at the new table) still name the Citus placement
//! node, so a shard-local proxy goes straight to a node that has the row.
//!
//! Usage: citus-fixture [--name DB] [--hop none|fdw]
// A harness tool: it fails by panicking with a message, as the harness library does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;

use test_support::{citus_nodes, connect, describe, NodeCluster};

/// How a single-shard statement sent to the coordinator reaches its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// The coordinator holds every row and runs the statement itself (the plain fixture).
    None,
    /// The coordinator's `users` lives on the nodes, reached through postgres_fdw.
    Fdw,
}

struct Args {
    name: String,
    hop: Hop,
}

fn parse_args() -> Args {
    let mut args = Args { name: "slbench".to_string(), hop: Hop::None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match a.as_str() {
            "--name" => args.name = value("--name"),
            "--hop" => {
                args.hop = match value("--hop").as_str() {
                    "none" => Hop::None,
                    "fdw" => Hop::Fdw,
                    other => usage(&format!("--hop {other}: expected none or fdw")),
                }
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if args.name.is_empty() || !args.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        usage("--name must be letters, digits and _");
    }
    args
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("citus-fixture: {problem}");
    }
    eprintln!("usage: citus-fixture [--name DB] [--hop none|fdw]   (waits until stdin closes)");
    std::process::exit(2);
}

fn main() {
    let args = parse_args();
    let cluster = citus_nodes(&args.name);
    assert!(!cluster.is_real(), "citus-fixture builds the fixture; unset CITUS_PROXY_TEST_CITUS");
    let mut facts = vec![
        ("DATABASE".to_string(), cluster.database.clone()),
        ("HOP".to_string(), format!("{:?}", args.hop).to_lowercase()),
        ("COORDINATOR_URL".to_string(), cluster.coordinator.url.clone()),
        ("COORDINATOR_ADDR".to_string(), cluster.coordinator.addr()),
    ];
    for w in &cluster.workers {
        facts.push((format!("NODE{}_URL", w.group), w.url.clone()));
        facts.push((format!("NODE{}_ADDR", w.group), w.addr()));
    }
    if args.hop == Hop::Fdw {
        let trace = runtime().block_on(install_fdw_hop(&cluster));
        facts.push(("FDW_REMOTE_STATEMENTS_PER_POINT_SELECT".to_string(), trace.len().to_string()));
        for (i, stmt) in trace.iter().enumerate() {
            facts.push((format!("FDW_REMOTE_STATEMENT_{}", i + 1), stmt.clone()));
        }
    }
    let mut out = std::io::stdout().lock();
    for (k, v) in facts {
        writeln!(out, "{k}={v}").expect("write stdout");
    }
    writeln!(out, "READY=1").expect("write stdout");
    out.flush().expect("flush stdout");
    drop(out);
    // Live until the caller closes our stdin (or dies); the reaper then stops the servers.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build a tokio runtime")
}

/// Tables every node gets in full under `--hop fdw`: `users` (served through the foreign
/// partitions), and `orders` and `events` (the multi-shard reads of the mixed and aggregation
/// scenarios, so that a read spread to a node returns the whole answer, as Citus would).
const FULL_COPIES: [&str; 3] = ["users", "orders", "events"];

/// Sets up the fdw hop and returns the statements one coordinator point select runs on the node
/// (read from the node's log with `log_statement = 'all'`).
async fn install_fdw_hop(cluster: &NodeCluster) -> Vec<String> {
    let coordinator = connect(&cluster.coordinator.url).await;
    for table in FULL_COPIES {
        let rows: Vec<String> = coordinator
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .unwrap_or_else(|e| panic!("read {table} on the coordinator: {}", describe(&e)))
            .iter()
            .map(|r| r.get(0))
            .collect();
        for w in &cluster.workers {
            let node = connect(&w.url).await;
            let sql = format!("INSERT INTO {table} SELECT (r::{table}).* FROM unnest($1::text[]) r ON CONFLICT DO NOTHING");
            node.execute(&sql, &[&rows]).await.unwrap_or_else(|e| panic!("copy {table} to {}: {}", w.addr(), describe(&e)));
            node.batch_execute(&format!("ANALYZE {table}")).await.unwrap_or_else(|e| panic!("analyze on {}: {}", w.addr(), describe(&e)));
        }
    }
    let modulus = cluster.workers.len();
    // Each node serves the coordinator's partition through a view of the rows that partition
    // would hold (PostgreSQL's own hash-partition test, on a table shaped like the parent), so a
    // full scan through the coordinator counts every row once even though each node has them all.
    for (remainder, w) in cluster.workers.iter().enumerate() {
        let node = connect(&w.url).await;
        node.batch_execute(&format!(
            "CREATE TABLE users_hash_shape (user_id bigint) PARTITION BY HASH (user_id);\n\
             CREATE VIEW users_remainder_{remainder} AS SELECT * FROM users \
             WHERE satisfies_hash_partition('users_hash_shape'::regclass, {modulus}, {remainder}, user_id);"
        ))
        .await
        .unwrap_or_else(|e| panic!("partition view on {}: {}", w.addr(), describe(&e)));
    }
    let mut sql = String::from("CREATE EXTENSION IF NOT EXISTS postgres_fdw;\n");
    for w in &cluster.workers {
        sql.push_str(&format!(
            "CREATE SERVER node{g} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{h}', port '{p}', dbname '{d}');\n\
             CREATE USER MAPPING FOR CURRENT_USER SERVER node{g} OPTIONS (user 'postgres');\n",
            g = w.group,
            h = w.host,
            p = w.port,
            d = cluster.database
        ));
    }
    // The old table's pg_dist_* rows are re-pointed at the new one (regclass is an OID), so the
    // proxy's metadata still describes `users` with its Citus shards and placements.
    sql.push_str(
        "BEGIN;\n\
         ALTER TABLE users RENAME TO users_before_fdw;\n\
         CREATE TABLE users (user_id bigint NOT NULL, username text, email text) PARTITION BY HASH (user_id);\n",
    );
    for (remainder, w) in cluster.workers.iter().enumerate() {
        sql.push_str(&format!(
            "CREATE FOREIGN TABLE users_on_node{g} PARTITION OF users FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder}) \
             SERVER node{g} OPTIONS (table_name 'users_remainder_{remainder}');\n",
            g = w.group
        ));
    }
    sql.push_str(
        "SET LOCAL allow_system_table_mods = on;\n\
         UPDATE pg_catalog.pg_dist_partition SET logicalrelid = 'users'::regclass WHERE logicalrelid = 'users_before_fdw'::regclass;\n\
         UPDATE pg_catalog.pg_dist_shard SET logicalrelid = 'users'::regclass WHERE logicalrelid = 'users_before_fdw'::regclass;\n\
         DROP TABLE users_before_fdw;\n\
         COMMIT;\n\
         ANALYZE users;\n",
    );
    coordinator.batch_execute(&sql).await.unwrap_or_else(|e| panic!("install the fdw hop: {}", describe(&e)));
    trace_point_select(cluster).await
}

/// The statements a prepared point select through the coordinator runs on the node: turns on
/// `log_statement` for the fixture database on every node, runs the select twice on a fresh
/// coordinator session (the first also opens the fdw connection), and reads the node's log for the
/// second. The node's log is `server.log` next to its data directory (the harness's layout).
async fn trace_point_select(cluster: &NodeCluster) -> Vec<String> {
    let key: i64 = 42;
    let db = &cluster.database;
    for w in &cluster.workers {
        connect(&w.url).await.batch_execute(&format!("ALTER DATABASE \"{db}\" SET log_statement = 'all'")).await.expect("log_statement");
    }
    let coordinator = connect(&cluster.coordinator.url).await;
    let stmt = coordinator.prepare("SELECT user_id, username, email FROM users WHERE user_id = $1").await.expect("prepare");
    // Which partition, so which node, holds the key under the coordinator's hash partitioning.
    let part: String = coordinator
        .query_one("SELECT tableoid::regclass::text FROM users WHERE user_id = $1", &[&key])
        .await
        .expect("partition of the key")
        .get(0);
    let traced = cluster.workers.iter().find(|w| part == format!("users_on_node{}", w.group)).expect("the key's partition");
    let data_dir: String = connect(&traced.url).await.query_one("SHOW data_directory", &[]).await.expect("data_directory").get(0);
    let log = std::path::Path::new(&data_dir).with_file_name("server.log");
    coordinator.query(&stmt, &[&key]).await.expect("first point select");
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let rows = coordinator.query(&stmt, &[&key]).await.expect("second point select");
    assert_eq!(rows.len(), 1, "the fdw hop must find user {key}");
    // The remote COMMIT is sent at the coordinator's commit, which the reply already followed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {}: {e}", log.display()));
    let new = text.get(usize::try_from(before).unwrap_or(0)..).unwrap_or("");
    let trace: Vec<String> = new
        .lines()
        .filter_map(|l| l.split_once("LOG:  ").map(|(_, m)| m))
        .filter(|m| m.starts_with("statement: ") || m.starts_with("execute "))
        .map(|m| m.to_string())
        .collect();
    for w in &cluster.workers {
        connect(&w.url).await.batch_execute(&format!("ALTER DATABASE \"{db}\" RESET log_statement")).await.expect("reset log_statement");
    }
    trace
}
