//! Statement shapes: literals stripped into `$n` slots (like pg_stat_statements) so that
//! `user_id = 42` and `= 43` share one cached analysis, and the bounded cache holding them.

mod cache;
mod hint;
mod normalize;

pub use cache::ShapeCache;
pub use normalize::{normalize, Literal, LiteralKind, Normalized};
