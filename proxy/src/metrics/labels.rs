//! The label vocabularies (docs/metrics.md) are the router's typed `RouteKind` and `Class`:
//! statements carry them as values from the decision to the pre-registered metric handles,
//! which are indexed by `index()` (no label strings built or parsed per statement).

pub use citus_proxy_router::{Class, RouteKind};
