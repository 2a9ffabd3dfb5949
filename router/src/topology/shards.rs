//! Value → shard: binary search over the real `[shardminvalue, shardmaxvalue]` ranges (they stop
//! being uniform after shard splits), and integer range lookups for range/append tables.

use super::{CitusTable, Shard, TableKind};

impl CitusTable {
    /// The hash shard whose range contains `hash`, or None when ranges leave it uncovered.
    pub fn shard_for_hash(&self, hash: i32) -> Option<&Shard> {
        // Shards are sorted by min: the candidate is the last one whose min <= hash.
        let pos = self.shards.partition_point(|s| s.hash_range.is_some_and(|(lo, _)| lo <= hash));
        let s = self.shards.get(pos.checked_sub(1)?)?;
        let (lo, hi) = s.hash_range?;
        (lo <= hash && hash <= hi).then_some(s)
    }

    /// Range/append tables: every shard that may hold `v` (shards with unknown bounds included).
    pub fn shards_for_int(&self, v: i64) -> Vec<&Shard> {
        self.shards
            .iter()
            .filter(|s| match s.int_range {
                Some((lo, hi)) => lo.is_none_or(|lo| lo <= v) && hi.is_none_or(|hi| v <= hi),
                None => true,
            })
            .collect()
    }

    /// The only shard of a table that has exactly one (reference, Citus-local, single-shard).
    pub fn only_shard(&self) -> Option<&Shard> {
        match self.shards.as_slice() {
            [s] => Some(s),
            _ => None,
        }
    }

    pub fn is_distributed(&self) -> bool {
        matches!(self.kind, TableKind::Hash | TableKind::Range | TableKind::Append | TableKind::SingleShard)
    }
}
