//! Key restriction → shards of one Citus table, with the explanation of how.

use super::restrict::KeySet;
use crate::hash::hash_datum;
use crate::route::ShardRef;
use crate::topology::{CitusTable, Shard, TableKind, Topology};
use crate::types::Datum;

pub(crate) struct Pruned<'t> {
    pub shards: Vec<&'t Shard>,
    /// A value whose hash is not known (type not ported, non-deterministic collation, gap).
    pub unknown: bool,
    pub notes: Vec<String>,
    explain: bool,
}

impl Pruned<'_> {
    /// Records an explanation line, built only when explaining.
    fn note(&mut self, f: impl FnOnce() -> String) {
        if self.explain {
            self.notes.push(f());
        }
    }
}

pub(crate) fn qualified(t: &CitusTable) -> String {
    if t.schema == "public" {
        t.name.clone()
    } else {
        format!("{}.{}", t.schema, t.name)
    }
}

pub(crate) fn node_addrs(topo: &Topology, s: &Shard) -> Vec<String> {
    s.nodes.iter().filter_map(|n| topo.node(*n)).map(|n| n.addr().to_string()).collect()
}

pub(crate) fn shard_ref(topo: &Topology, t: &CitusTable, s: &Shard) -> ShardRef {
    ShardRef { table: qualified(t), shard_id: Some(s.id), nodes: node_addrs(topo, s) }
}

fn push<'t>(v: &mut Vec<&'t Shard>, s: &'t Shard) {
    if !v.iter().any(|x| x.id == s.id) {
        v.push(s);
    }
}

/// Citus coerces a constant to the column's type *and typmod* before hashing, and the snapshot
/// has no typmod: `timestamp(p)` would round a fraction of a second, so only whole seconds (and
/// the infinities) are certain.
fn typmod_proof(d: &Datum) -> bool {
    !matches!(d, Datum::Timestamp(us) if *us % 1_000_000 != 0 && *us != i64::MIN && *us != i64::MAX)
}

/// The shard of one hashable value of a hash table (None when uncovered or unhashable).
pub(crate) fn hash_shard<'t>(t: &'t CitusTable, d: &Datum) -> (Option<&'t Shard>, Option<i32>) {
    let hashable = t.dist_column.as_ref().is_some_and(|c| c.hashable) && typmod_proof(d);
    let h = if hashable { hash_datum(d) } else { None };
    (h.and_then(|h| t.shard_for_hash(h)), h)
}

pub(crate) fn prune<'t>(topo: &Topology, t: &'t CitusTable, ks: &KeySet, explain: bool) -> Pruned<'t> {
    let key = t.dist_column.as_ref().map_or("?", |d| d.name.as_str());
    let name = if explain { qualified(t) } else { String::new() };
    let mut p = Pruned { shards: Vec::new(), unknown: false, notes: Vec::new(), explain };
    match (t.kind, ks) {
        (_, KeySet::Values(v)) if v.is_empty() => p.note(|| format!("{name}.{key}: contradiction, no shard")),
        (TableKind::Hash, KeySet::Values(values)) => {
            for d in values {
                match hash_shard(t, d) {
                    (Some(s), Some(h)) => {
                        p.note(|| {
                            let nodes = node_addrs(topo, s).join(",");
                            format!("{name}.{key} = {} → hash {h} → shard {} on {nodes}", d.display(), s.id)
                        });
                        push(&mut p.shards, s);
                    }
                    (None, Some(h)) => {
                        p.unknown = true;
                        p.note(|| format!("{name}.{key} = {} → hash {h} → no shard covers it", d.display()));
                    }
                    _ => {
                        p.unknown = true;
                        p.note(|| {
                            format!("{name}.{key} = {}: hash not known for certain (type not ported, collation or typmod)", d.display())
                        });
                    }
                }
            }
        }
        (TableKind::Range | TableKind::Append, KeySet::Values(values)) => {
            for d in values {
                let v = match d {
                    Datum::Int2(x) => Some(i64::from(*x)),
                    Datum::Int4(x) => Some(i64::from(*x)),
                    Datum::Int8(x) => Some(*x),
                    _ => None,
                };
                match v {
                    Some(v) => t.shards_for_int(v).into_iter().for_each(|s| push(&mut p.shards, s)),
                    None => t.shards.iter().for_each(|s| push(&mut p.shards, s)),
                }
            }
            let n = p.shards.len();
            p.note(|| format!("{name}.{key}: range lookup → {n} shard(s)"));
        }
        _ => {
            p.shards = t.shards.iter().collect();
            if t.kind == TableKind::Hash || t.shards.len() > 1 {
                p.note(|| format!("{name}: no usable restriction on {key} → all {} shards", t.shards.len()));
            }
        }
    }
    p
}
