//! Every row of routing-examples.tsv (what real Citus 13.2 decided) must agree on the route word,
//! and single-shard rows on the exact shard set. `$n` rows are bound as text and as binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::types::PgType;
use citus_proxy_router::{Decision, Router, Topology};

fn binary(value: &str, oid: u32) -> Option<Vec<u8>> {
    Some(match PgType::from_oid(oid) {
        PgType::Int2 => value.parse::<i16>().ok()?.to_be_bytes().to_vec(),
        PgType::Int4 => value.parse::<i32>().ok()?.to_be_bytes().to_vec(),
        PgType::Int8 => value.parse::<i64>().ok()?.to_be_bytes().to_vec(),
        PgType::Uuid => citus_proxy_router::types::parse_input(value, PgType::Uuid).ok().and_then(|d| match d {
            citus_proxy_router::types::Datum::Uuid(u) => Some(u.to_vec()),
            _ => None,
        })?,
        PgType::Text | PgType::Varchar => value.as_bytes().to_vec(),
        _ => return None,
    })
}

fn verdict(d: &Decision, want_route: &str, want_shards: &str) -> Option<String> {
    let want_route = if want_route == "n/a" { "utility" } else { want_route };
    let got = d.route.word();
    if got != want_route {
        return Some(format!("route {got} ({})", d.reason));
    }
    if want_route == "single-shard" {
        let mut want: Vec<i64> = want_shards.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        want.sort_unstable();
        let unknown = d.route.shards().iter().any(|s| s.shard_id.is_none());
        if unknown || d.route.shard_ids() != want {
            return Some(format!("shards {:?} (unknown: {unknown}) want {want:?}", d.route.shard_ids()));
        }
    }
    None
}

fn run(router: &Router, topo: &Topology) -> (usize, Vec<String>) {
    let rows = common::tsv("routing-examples.tsv");
    let mut bad = Vec::new();
    let mut checked = 0;
    for r in &rows {
        let f = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
        let (id, sql, route, shards, params, types) = (f("id"), f("sql"), f("route"), f("shardids"), f("params"), f("param_types"));
        if params == "-" || params.is_empty() {
            let d = router.route_query(&sql, topo, &["public"]);
            checked += 1;
            if let Some(v) = verdict(&d, &route, &shards) {
                bad.push(format!("{id}\t{route}\t{v}\t{sql}"));
            }
            continue;
        }
        let values: Vec<&str> = params.split('|').collect();
        let declared: Vec<u32> = if types == "-" || types.is_empty() {
            vec![0; values.len()]
        } else {
            types.split(',').map(|t| PgType::from_sql_name(t).map_or(0, PgType::oid)).collect()
        };
        let p = router.prepare(&sql, &declared);
        // Text format.
        let text: Vec<Option<&[u8]>> = values.iter().map(|v| Some(v.as_bytes())).collect();
        let d = router.route_bound(&p, &text, &[], topo, &["public"]);
        checked += 1;
        if let Some(v) = verdict(&d, &route, &shards) {
            bad.push(format!("{id}/text\t{route}\t{v}\t{sql}"));
        }
        // Binary format, with the types the server would report (declared or inferred).
        let resolved = p.param_types(topo, &["public"]);
        let encoded: Vec<Option<Vec<u8>>> =
            values.iter().enumerate().map(|(i, v)| binary(v, resolved.get(i).copied().unwrap_or(0))).collect();
        if encoded.iter().any(Option::is_none) {
            bad.push(format!("{id}/binary\t{route}\tcannot encode with types {resolved:?}\t{sql}"));
            continue;
        }
        let bin: Vec<Option<&[u8]>> = encoded.iter().map(|e| e.as_deref()).collect();
        let d = router.route_bound(&p, &bin, &[1], topo, &["public"]);
        checked += 1;
        if let Some(v) = verdict(&d, &route, &shards) {
            bad.push(format!("{id}/binary\t{route}\t{v}\t{sql}"));
        }
    }
    (checked, bad)
}

#[test]
fn every_routing_example_agrees_with_citus() {
    let topo = common::topology();
    let router = Router::new(1024);
    let (checked, bad) = run(&router, &topo);
    assert!(checked > 80, "expected every example to be checked, got {checked}");
    if !bad.is_empty() {
        eprintln!("id\twant\tgot\tsql");
        for b in &bad {
            eprintln!("{b}");
        }
    }
    assert!(bad.is_empty(), "{} of {checked} checks disagree with Citus", bad.len());
    // Second pass: every shape now comes from the cache and must give the same answers.
    let (_, again) = run(&router, &topo);
    assert!(again.is_empty(), "cached shapes disagree: {again:?}");
    let (hits, _, _) = router.cache_stats();
    assert!(hits > 80, "second pass should hit the shape cache, hits = {hits}");
}
