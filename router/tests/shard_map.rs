//! Every row of shard-map-examples.tsv: value → hash → shard id → node, as real Citus placed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // a panic here is a failed test, not a crashed proxy

mod common;

use citus_proxy_router::hash::hash_datum;
use citus_proxy_router::types::parse_input;

#[test]
fn every_shard_map_example() {
    let topo = common::topology();
    let rows = common::tsv("shard-map-examples.tsv");
    assert!(rows.len() > 200, "expected the full example file");
    let mut bad = Vec::new();
    for r in &rows {
        let f = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
        let (table, value) = (f("table"), r.get("value").cloned().flatten().unwrap_or_default());
        let t = topo.table_by_name("public", &table).unwrap_or_else(|| panic!("table {table}"));
        let dc = t.dist_column.as_ref().expect("dist column");
        let d = parse_input(&value, dc.ty).unwrap_or_else(|e| panic!("{table} {value:?}: {e}"));
        let h = hash_datum(&d).expect("hashable");
        let shard = t.shard_for_hash(h).expect("shard");
        let nodes: Vec<String> = shard.nodes.iter().filter_map(|n| topo.node(*n)).map(|n| n.addr().to_string()).collect();
        let got = (h.to_string(), shard.id.to_string(), nodes.join(","));
        let want = (f("hash"), f("shardid"), f("node"));
        if got != want {
            bad.push(format!("{table}\t{value:?}\twant {want:?}\tgot {got:?}"));
        }
    }
    assert!(bad.is_empty(), "{} of {} rows differ:\n{}", bad.len(), rows.len(), bad.join("\n"));
}
