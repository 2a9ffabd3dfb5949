//! SHOW CLUSTER: nodes with their shard placements, then tables with shard counts and imbalance.

use std::collections::HashMap;

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(ctx: &Context) -> Vec<ResultSet> {
    let mut nodes = ResultSet::new(&["node", "group", "active", "role", "should_have_shards", "placements"]);
    let mut tables = ResultSet::new(&["table", "kind", "distribution_column", "colocation", "shards", "imbalance"]);
    let guard = ctx.metadata.topology();
    let Some(topo) = guard.as_ref() else {
        return vec![nodes, tables];
    };
    let per_node: HashMap<String, usize> = topo.shards_per_node().into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    for n in topo.nodes() {
        let addr = n.addr();
        rs_node(&mut nodes, n, per_node.get(addr).copied().unwrap_or(0));
    }
    for t in topo.tables() {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for s in &t.shards {
            for n in &s.nodes {
                *counts.entry(*n).or_default() += 1;
            }
        }
        let imbalance = if !counts.is_empty() && t.shards.len() > 1 {
            let max = counts.values().max().copied().unwrap_or(0) as f64;
            let mean = counts.values().sum::<usize>() as f64 / counts.len() as f64;
            Some(format!("{:.2}", max / mean))
        } else {
            None
        };
        tables.row(vec![
            v(format!("{}.{}", t.schema, t.name)),
            v(format!("{:?}", t.kind).to_lowercase()),
            t.dist_column.as_ref().map(|c| c.name.clone()),
            v(t.colocation_id),
            v(t.shards.len()),
            imbalance,
        ]);
    }
    vec![nodes, tables]
}

fn rs_node(rs: &mut ResultSet, n: &citus_proxy_router::topology::Node, placements: usize) {
    rs.row(vec![v(n.addr()), v(n.group_id), v(n.active), v(&n.role), v(n.should_have_shards), v(placements)]);
}
