//! Statement shapes: literals stripped into `$n` slots (like pg_stat_statements) so that
//! `user_id = 42` and `= 43` share one cached analysis, and the bounded cache holding them.

mod cache;
mod hint;
mod normalize;

pub use cache::ShapeCache;
pub use normalize::{normalize, Literal, LiteralKind, Normalized};

use std::hash::{Hash, Hasher};

/// A shape's id: a 64-bit hash of its text, the same for the same text for the life of the
/// process (SipHash with the fixed keys of `DefaultHasher::new`), so an id never moves to another
/// shape when the analysis cache evicts and re-creates entries.
pub fn shape_id(shape: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    shape.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::{normalize, shape_id};
    use crate::{Router, Topology};

    #[test]
    fn a_shape_keeps_its_id_across_eviction_and_re_analysis() {
        let router = Router::new(16);
        let topo = Topology::default();
        let id = |sql: &str| router.route_query(sql, &topo, &[]).analysis.shape_id;
        let first = id("SELECT 1 AS c0");
        assert_eq!(first, shape_id(&normalize("SELECT 1 AS c0").shape));
        assert_eq!(id("SELECT 2 AS c0"), first, "literals do not change the shape");
        let others: Vec<u64> = (1..100).map(|i| id(&format!("SELECT {i} AS c{i}"))).collect();
        assert!(!others.contains(&first), "every other shape has another id");
        // Evicted long ago; analysed again, the same shape gets the same id.
        assert_eq!(id("SELECT 3 AS c0"), first);
    }
}
