//! Routing in the running proxy, against the Citus coordinator of this test binary (the catalog
//! fixture, or a real coordinator named by CITUS_PROXY_TEST_CITUS): metadata is read with the same
//! queries as on real Citus, every routing example agrees, and the route is reported as a NOTICE,
//! as metric labels and by `citus-proxy explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;
use std::time::Duration;

use common::{connect_observed, eventually, Proxy, Seen};

fn notices(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Notice { message, .. } if message.starts_with("citus-proxy route") => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn notices_report_the_route_when_asked() {
    let proxy = Proxy::start_citus(&[]).await;
    let c = connect_observed(&proxy.citus_url()).await;
    c.client.simple_query("SELECT * FROM users WHERE user_id = 42").await.expect("query");
    assert!(notices(&c.take()).is_empty(), "no notices unless the session asks");

    c.client.simple_query("SET citus_proxy.report_routing = on").await.expect("set");
    c.take();
    c.client.simple_query("SELECT * FROM users WHERE user_id = 42").await.expect("query");
    let n = notices(&c.take());
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(n[0].contains("single-shard") && n[0].contains("102035") && n[0].contains("127.0.0.1:9702"), "{}", n[0]);

    // Extended protocol: analysed at Parse, routed at Bind with the bound value.
    let rows = c.client.query("SELECT username FROM users WHERE user_id = $1", &[&7i64]).await.expect("prepared");
    assert_eq!(rows.len(), 1);
    let n = notices(&c.take());
    assert!(n.iter().any(|m| m.contains("single-shard")), "{n:?}");

    c.client.simple_query("SELECT count(*) FROM users").await.expect("count");
    assert!(notices(&c.take()).iter().any(|m| m.contains("multi-shard")));
    c.client.simple_query("SELECT * FROM users WHERE user_id = 1 AND user_id = 2").await.expect("contradiction");
    assert!(notices(&c.take()).iter().any(|m| m.contains("zero-shard")));
    c.client.simple_query("SELECT count(*) FROM config").await.expect("reference");
    assert!(notices(&c.take()).iter().any(|m| m.contains("reference")));
    c.client.simple_query("SELECT 1").await.expect("coordinator");
    assert!(notices(&c.take()).iter().any(|m| m.contains("coordinator")));

    // Unparsable SQL is forwarded unchanged and reported as unknown.
    c.client.simple_query("DO $$ BEGIN PERFORM 1; END $$").await.expect("DO is forwarded");
    assert!(notices(&c.take()).iter().any(|m| m.contains("unknown")));

    c.client.simple_query("SET citus_proxy.report_routing = off").await.expect("off");
    c.take();
    c.client.simple_query("SELECT * FROM users WHERE user_id = 42").await.expect("query");
    assert!(notices(&c.take()).is_empty());
    proxy.stop().await;
}

#[tokio::test]
async fn metrics_carry_exact_route_and_class_labels() {
    let proxy = Proxy::start_citus(&[]).await;
    let c = test_support::connect(&proxy.citus_url()).await;
    for id in [1i64, 2, 3] {
        c.query("SELECT * FROM users WHERE user_id = $1", &[&id]).await.expect("point");
    }
    c.simple_query("SELECT count(*) FROM users").await.expect("count");
    c.simple_query("SELECT kind, count(*) FROM events GROUP BY kind").await.expect("agg");
    c.simple_query("SELECT avg(total) FROM orders").await.expect("avg");
    drop(c);
    let ctx = proxy.ctx.clone();
    // ReadyForQuery is recorded before the client sees it, so the counts are final now.
    let text = ctx.metrics.render(&ctx.sessions);
    let count = |route: &str, class: &str| -> u64 {
        let needle = format!("citus_proxy_queries_total{{route=\"{route}\",class=\"{class}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&needle)).map(|v| v.trim().parse::<f64>().unwrap_or(0.0) as u64).unwrap_or(0)
    };
    assert_eq!(count("single-shard", "single_shard_query"), 3, "{text}");
    assert_eq!(count("multi-shard", "count"), 1);
    assert_eq!(count("multi-shard", "multi_shard_aggregation"), 2);
    assert!(
        text.contains("citus_proxy_query_duration_seconds_bucket{route=\"single-shard\",class=\"single_shard_query\",le=\"0.1\"} 3"),
        "{text}"
    );
    assert!(text.contains("citus_proxy_cluster_nodes{state=\"active\"} 3"));
    assert!(text.contains("citus_proxy_cluster_shards{node=\"127.0.0.1:9701\"}"));
    proxy.stop().await;
}

#[tokio::test]
async fn a_slow_statement_is_a_violation_of_its_class() {
    let proxy = Proxy::start_citus(&[("slo.single_shard_query", "100ms")]).await;
    let c = test_support::connect(&proxy.citus_url()).await;
    c.simple_query("SELECT user_id, pg_sleep(0.25) FROM users WHERE user_id = 42").await.expect("slow");
    c.simple_query("SELECT user_id FROM users WHERE user_id = 43").await.expect("fast");
    let slo = proxy.ctx.metrics.slo_json();
    let class =
        slo["classes"].as_array().and_then(|a| a.iter().find(|c| c["class"] == "single_shard_query")).cloned().expect("class present");
    assert_eq!(class["count"], 2);
    assert_eq!(class["violations"], 1);
    assert_eq!(class["pass"], false, "p99 of [fast, 250 ms] is over 100 ms: {class}");
    let text = proxy.ctx.metrics.render(&proxy.ctx.sessions);
    assert!(text.contains("citus_proxy_slo_violations_total{class=\"single_shard_query\"} 1"), "{text}");
    proxy.stop().await;
}

/// Every routing example, through the proxy's real metadata path (catalog queries → topology →
/// router), must agree with what real Citus decided.
#[tokio::test]
async fn routing_examples_agree_through_the_metadata_path() {
    let proxy = Proxy::start_citus(&[]).await;
    let path = test_support::CitusCluster::data_file("routing-examples.tsv");
    let text = std::fs::read_to_string(&path).expect("read routing examples");
    let guard = proxy.ctx.metadata.topology();
    let topo = guard.as_ref().expect("metadata loaded");
    let router = citus_proxy_router::Router::new(64);
    let mut mismatches = Vec::new();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (sql_c, route_c, shards_c, params_c) = (col("sql"), col("route"), col("shardids"), col("params"));
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let expected = match f[route_c] {
            "n/a" => "utility",
            r => r,
        };
        let decision = if f[params_c] != "-" {
            let values: Vec<&str> = f[params_c].split('|').collect();
            let prepared = router.prepare(f[sql_c], &vec![0; values.len()]);
            let params: Vec<Option<&[u8]>> = values.iter().map(|v| Some(v.as_bytes())).collect();
            router.route_bound(&prepared, &params, &[], topo, &["public"])
        } else {
            router.route_query(f[sql_c], topo, &["public"])
        };
        let got = decision.route.word();
        let mut ok = got == expected;
        if ok && expected == "single-shard" {
            let want: Vec<i64> = f[shards_c].split(',').filter_map(|s| s.parse().ok()).collect();
            let mut want = want;
            want.sort_unstable();
            ok = decision.route.shard_ids() == want;
        }
        if !ok {
            mismatches.push(format!(
                "{}: expected {expected} {}, got {got} {:?} ({})",
                f[0],
                f[shards_c],
                decision.route.shard_ids(),
                decision.reason
            ));
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    proxy.stop().await;
}

#[tokio::test]
async fn metadata_refreshes_after_ddl_and_keeps_the_last_snapshot_on_failure() {
    let cluster = test_support::citus();
    let url = cluster.private_copy("citus_refresh");
    let proxy = Proxy::start_on(&url, &[("metadata.refresh_interval", "0s")]).await;
    let route_of_42 = || {
        let g = proxy.ctx.metadata.topology();
        let t = g.as_ref().expect("loaded").clone();
        let d = citus_proxy_router::Router::new(4).route_query("SELECT * FROM users WHERE user_id = 42", &t, &["public"]);
        d.route.nodes()
    };
    assert_eq!(route_of_42(), vec!["127.0.0.1:9702".to_string()]);
    let loads = proxy.ctx.metadata.loads();
    // Move shard 102035 to the other worker behind the proxy's back, as the rebalancer would.
    let direct = test_support::connect(&url).await;
    direct.batch_execute("UPDATE pg_dist_placement SET groupid = 1 WHERE shardid = 102035").await.expect("move");
    assert_eq!(route_of_42(), vec!["127.0.0.1:9702".to_string()], "no refresh yet");
    // DDL passing through the proxy triggers a reload.
    let via = test_support::connect(&proxy.url("citus_refresh")).await;
    via.batch_execute("CREATE TABLE refresh_trigger (x int)").await.expect("ddl");
    let ctx = proxy.ctx.clone();
    assert!(
        eventually(10, || {
            let ctx = ctx.clone();
            async move { ctx.metadata.loads() > loads }
        })
        .await,
        "reloaded after DDL"
    );
    assert_eq!(route_of_42(), vec!["127.0.0.1:9701".to_string()]);

    // A catalog that cannot be read: the last snapshot stays and the failure is counted.
    direct
        .batch_execute("SET allow_system_table_mods = on; ALTER TABLE pg_catalog.pg_dist_shard RENAME TO pg_dist_shard_gone")
        .await
        .expect("hide the shard catalog");
    let loads = proxy.ctx.metadata.loads();
    via.batch_execute("CREATE TABLE refresh_trigger2 (x int)").await.expect("ddl");
    let ctx2 = proxy.ctx.clone();
    assert!(
        eventually(10, || {
            let c = ctx2.clone();
            async move { c.metadata.last_error().is_some() }
        })
        .await
    );
    assert_eq!(proxy.ctx.metadata.loads(), loads);
    assert_eq!(route_of_42(), vec!["127.0.0.1:9701".to_string()], "last good snapshot kept");
    let text = proxy.ctx.metrics.render(&proxy.ctx.sessions);
    assert!(text.contains("citus_proxy_metadata_refresh_errors_total 1"), "{text}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    proxy.stop().await;
}

#[test]
fn explain_cli_prints_text_and_json() {
    let url = test_support::citus().url().split('?').next().unwrap_or_default().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_citus-proxy"))
            .args(["explain", "--upstream", &url, "--upstream-sslmode", "disable"])
            .args(args)
            .output()
            .expect("run explain");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&["SELECT * FROM users WHERE user_id = 42"]);
    assert!(text.starts_with("single-shard"), "{text}");
    assert!(text.contains("1509752520") && text.contains("102035") && text.contains("127.0.0.1:9702"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--format", "json", "--param", "42", "SELECT * FROM users WHERE user_id = $1"])).expect("json");
    assert_eq!(json["route"], "single-shard");
    assert_eq!(json["shards"], serde_json::json!([102035]));
    assert_eq!(json["nodes"], serde_json::json!(["127.0.0.1:9702"]));
    assert!(json["tables"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(json["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let json: serde_json::Value = serde_json::from_str(&run(&["--format", "json", "SELECT count(*) FROM users"])).expect("json");
    assert_eq!(json["route"], "multi-shard");
    assert_eq!(json["shards"].as_array().map(|a| a.len()), Some(32));
}

#[tokio::test]
async fn plain_postgresql_is_a_cluster_without_citus_tables() {
    let url = test_support::postgres().fresh_database("plain_pg_routing");
    test_support::connect(&url).await.batch_execute("CREATE TABLE plain_t (x int)").await.expect("table");
    // start_on waits until the metadata loaded: without a Citus catalog it still does.
    let proxy = Proxy::start_on(&url, &[]).await;
    assert!(proxy.ctx.metadata.last_error().is_none(), "{:?}", proxy.ctx.metadata.last_error());
    let c = connect_observed(&proxy.url("plain_pg_routing")).await;
    c.client.simple_query("SET citus_proxy.report_routing = on").await.expect("set");
    c.take();
    c.client.simple_query("SELECT count(*) FROM plain_t").await.expect("query");
    let n = notices(&c.take());
    assert!(n.iter().any(|m| m.contains("local")), "{n:?}");
    c.client.simple_query("SELECT count(*) FROM no_such_table_here").await.expect_err("missing table");
    proxy.stop().await;
}
