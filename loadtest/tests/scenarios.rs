//! Setup and every scenario against the harness's real PostgreSQL (no Citus, no pgvector there:
//! the float8[] `<->` path and the Citus-only skips are what gets exercised).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

use std::time::Duration;

use citus_loadtest::class::Class;
use citus_loadtest::cli::{Amount, NamedUrl};
use citus_loadtest::progress::Progress;
use citus_loadtest::runner::{run_scenario, Settings, Status};
use citus_loadtest::scenario::ScenarioKind;
use citus_loadtest::setup::{ensure_schema, VectorKind};
use citus_loadtest::target::Connected;

fn settings(iterations: u64) -> Settings {
    Settings {
        clients: 2,
        amount: Amount::Iterations(iterations),
        warmup: Duration::ZERO,
        rate: None,
        slices: 2,
        op_timeout: Duration::from_secs(30),
        register_worker: None,
    }
}

async fn open(name: &str, url: &str) -> Connected {
    Connected::open(&NamedUrl { name: name.into(), url: url.into() }, 2).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_is_idempotent() {
    let url = test_support::postgres().fresh_database("loadtest_setup");
    let t = open("direct", &url).await;
    assert!(!t.info.citus);
    let first = ensure_schema(&t.admin, &t.info, 0.1).await.expect("first setup");
    assert_eq!(first.created.len(), 10, "{first:?}");
    assert!(first.existing.is_empty());
    assert_eq!(first.vector, if t.info.pgvector_available { VectorKind::Pgvector } else { VectorKind::Float8Array });
    let users: i64 = t.admin.query_one("SELECT count(*) FROM users", &[]).await.expect("count").get(0);
    assert_eq!(users, 500);

    let second = ensure_schema(&t.admin, &t.info, 0.1).await.expect("second setup");
    assert!(second.created.is_empty(), "{second:?}");
    assert_eq!(second.existing.len(), 10);
    let again: i64 = t.admin.query_one("SELECT count(*) FROM users", &[]).await.expect("count").get(0);
    assert_eq!(again, users, "a second setup must not load the data twice");

    // The distance operator has pgvector's shape and ranks an exact match first.
    let nearest: i64 = t
        .admin
        .query_one("SELECT doc_id FROM documents ORDER BY embedding <-> (SELECT embedding FROM documents WHERE doc_id = 7) LIMIT 1", &[])
        .await
        .expect("<-> query")
        .get(0);
    assert_eq!(nearest, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_records_its_classes() {
    let url = test_support::postgres().fresh_database("loadtest_scenarios");
    let t = open("direct", &url).await;
    ensure_schema(&t.admin, &t.info, 0.1).await.expect("setup");
    let targets = [t];
    let s = settings(6);
    for kind in ScenarioKind::ALL {
        let runs = run_scenario(kind, &targets, &s, &Progress::silent()).await;
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        if kind.requires_citus() {
            assert!(matches!(run.status, Status::Skipped(_)), "{kind:?}: {:?}", run.status);
            continue;
        }
        assert_eq!(run.status, Status::Ran, "{kind:?}");
        let total: u64 = run.classes.values().map(|r| r.count()).sum();
        let errors: u64 = run.classes.values().map(|r| r.errors).sum();
        let first_error = run.classes.values().find_map(|r| r.first_error.clone());
        assert_eq!(errors, 0, "{kind:?}: {first_error:?}");
        assert_eq!(total, 6, "{kind:?}: every iteration is recorded exactly once");
        for class in run.classes.keys() {
            assert!(kind.classes().contains(class), "{kind:?} recorded into {class}");
        }
        assert!(run.measured > Duration::ZERO);
    }
    // The bulk scenarios clean up after themselves.
    let left: i64 = targets[0].admin.query_one("SELECT count(*) FROM loadtest_bulk", &[]).await.expect("count").get(0);
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_rate_and_duration_slices() {
    let url = test_support::postgres().fresh_database("loadtest_rate");
    let t = open("direct", &url).await;
    ensure_schema(&t.admin, &t.info, 0.1).await.expect("setup");
    let targets = [t];
    let s = Settings { rate: Some(50.0), amount: Amount::Duration(Duration::from_millis(600)), ..settings(0) };
    let runs = run_scenario(ScenarioKind::PointSelect, &targets, &s, &Progress::silent()).await;
    let n = runs[0].classes.get(&Class::SingleShardQuery).map_or(0, |r| r.count());
    // 50/s for 0.6 s: about 30 operations, whatever the server could have done closed-loop.
    assert!((20..=40).contains(&n), "{n} operations at 50/s over 0.6 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_schema_is_a_clear_failure() {
    let url = test_support::postgres().fresh_database("loadtest_empty");
    let targets = [open("direct", &url).await];
    let runs = run_scenario(ScenarioKind::PointSelect, &targets, &settings(2), &Progress::silent()).await;
    match &runs[0].status {
        Status::Failed(why) => assert!(why.contains("--scenario setup"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}
