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
