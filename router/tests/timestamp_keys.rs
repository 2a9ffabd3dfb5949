//! A table distributed on a `timestamp` column: literals, casts and Bind parameters (text and
//! binary) reach the shard of `timestamp_hash`; a fraction of a second, which the column's
//! unknown typmod may round, is one shard whose identity is not claimed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::catalog::{PartMethod, PartitionRow, PlacementRow, ShardRow};
use citus_proxy_router::hash::hash_timestamp;
use citus_proxy_router::types::parse_input;
use citus_proxy_router::types::{Datum, PgType};
use citus_proxy_router::{Route, Router, Topology};

const LOW: i64 = 990_101;
const HIGH: i64 = 990_102;

/// The fixture plus `ts_events(ts timestamp)` in two shards: negative hashes, then the rest.
fn topology() -> Topology {
    let mut rows = common::catalog_rows();
    rows.partitions.push(PartitionRow {
        schema: "public".into(),
        table: "ts_events".into(),
        method: PartMethod::Hash,
        dist_column: Some("ts".into()),
        dist_type: Some(1114),
        colocation_id: 9901,
        repmodel: 's',
        collation: None,
        collation_deterministic: None,
    });
    for (id, lo, hi, group) in [(LOW, i32::MIN, -1, 1), (HIGH, 0, i32::MAX, 2)] {
        rows.shards.push(ShardRow {
            schema: "public".into(),
            table: "ts_events".into(),
            shard_id: id,
            min_value: Some(lo.to_string()),
            max_value: Some(hi.to_string()),
        });
        rows.placements.push(PlacementRow { placement_id: id, shard_id: id, shard_state: 1, group_id: group });
    }
    Topology::build(rows).expect("topology")
}

fn usecs(text: &str) -> i64 {
    match parse_input(text, PgType::Timestamp) {
        Ok(Datum::Timestamp(v)) => v,
        other => panic!("{text}: {other:?}"),
    }
}

fn shard_of(text: &str) -> i64 {
    if hash_timestamp(usecs(text)) < 0 {
        LOW
    } else {
        HIGH
    }
}

fn single_shard(route: &Route) -> Option<Option<i64>> {
    match route {
        Route::SingleShard { shards, .. } => shards.first().map(|s| s.shard_id),
        _ => None,
    }
}

#[test]
fn literals_and_casts_hash_like_timestamp_hash() {
    let (topo, router) = (topology(), Router::new(64));
    let mut seen = Vec::new();
    for text in ["2020-01-01 10:20:30", "2000-01-01", "1999-12-31 23:59:59", "2024-02-29T23:00:00", "2020-02-29 24:00:00", "infinity"] {
        for sql in [
            format!("SELECT * FROM ts_events WHERE ts = '{text}'"),
            format!("SELECT * FROM ts_events WHERE ts = '{text}'::timestamp"),
            format!("SELECT * FROM ts_events WHERE ts = timestamp '{text}'"),
        ] {
            let d = router.route_query(&sql, &topo, &["public"]);
            assert_eq!(single_shard(&d.route), Some(Some(shard_of(text))), "{sql}: {}", d.reason);
        }
        seen.push(shard_of(text));
    }
    assert!(seen.contains(&LOW) && seen.contains(&HIGH), "the values should reach both shards: {seen:?}");
    // A date compared with the column is its midnight.
    let d = router.route_query("SELECT * FROM ts_events WHERE ts = date '2020-01-01'", &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(Some(shard_of("2020-01-01 00:00:00"))), "{}", d.reason);
}

#[test]
fn bind_parameters_text_and_binary() {
    let (topo, router) = (topology(), Router::new(64));
    let text = "2021-06-30 12:00:00";
    let untyped = router.prepare("SELECT * FROM ts_events WHERE ts = $1", &[]);
    let d = router.route_bound(&untyped, &[Some(text.as_bytes())], &[], &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(Some(shard_of(text))), "{}", d.reason);
    assert_eq!(untyped.param_types(&topo, &["public"]), vec![1114]);

    let typed = router.prepare("SELECT * FROM ts_events WHERE ts = $1", &[1114]);
    let binary = usecs(text).to_be_bytes();
    let d = router.route_bound(&typed, &[Some(&binary)], &[1], &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(Some(shard_of(text))), "{}", d.reason);
    let list = router.prepare("SELECT * FROM ts_events WHERE ts = ANY($1)", &[1115]);
    let d = router.route_bound(&list, &[Some(format!("{{\"{text}\"}}").as_bytes())], &[], &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(Some(shard_of(text))), "{}", d.reason);
}

#[test]
fn fractions_of_a_second_are_not_claimed() {
    let (topo, router) = (topology(), Router::new(64));
    let d = router.route_query("SELECT * FROM ts_events WHERE ts = '2020-01-01 10:20:30.5'", &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(None), "{}", d.reason);
    let typed = router.prepare("SELECT * FROM ts_events WHERE ts = $1", &[1114]);
    let binary = (usecs("2020-01-01 10:20:30") + 1).to_be_bytes();
    let d = router.route_bound(&typed, &[Some(&binary)], &[1], &topo, &["public"]);
    assert_eq!(single_shard(&d.route), Some(None), "{}", d.reason);
    // Not understood (a time zone is ignored by timestamp_in): every shard, never a guess.
    let d = router.route_query("SELECT * FROM ts_events WHERE ts = '2020-01-01 10:20:30+02'", &topo, &["public"]);
    assert_eq!(d.route.word(), "multi-shard", "{}", d.reason);
}
