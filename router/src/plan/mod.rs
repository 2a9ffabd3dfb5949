//! Evaluating a cached model against a topology and bound values: the route decision.

mod bind_cache;
mod decide;
mod insert;
mod prune;
mod resolve;
mod restrict;
pub(crate) mod values;

pub(crate) use bind_cache::{bound, BindCache};
pub(crate) use decide::{decide, Outcome};
pub(crate) use resolve::Bound;
