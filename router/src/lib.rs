//! Citus routing for citus-proxy: PostgreSQL hash functions, the Citus catalog, SQL analysis and
//! the route decision. Pure analysis: no sockets, no I/O.
//!
//! ```ignore
//! let topo = Topology::build(rows)?;
//! let router = Router::new(10_000);
//! let d = router.route_query("SELECT * FROM users WHERE user_id = 42", &topo, &["public"]);
//! println!("{}", d.explain_text()); // single-shard: users.user_id = 42 → hash 1509752520 → shard 102035 on …
//! // routing.shard_local: the node that may run the transaction this statement starts.
//! match shard_local(&d, &topo, &["public"]) {
//!     Placement::Node(i) => println!("on {}", topo.nodes()[i].addr()),
//!     Placement::Coordinator(why) => println!("on the coordinator: {why}"),
//! }
//! ```

pub mod analysis;
pub mod catalog;
mod class;
mod error;
mod explain;
pub mod hash;
mod placement;
mod plan;
mod route;
mod router;
pub mod shape;
pub mod topology;
pub mod types;

pub use analysis::{Analysis, CacheHint, ShapeFacts, StatementInfo, StatementKind, TableName, TxControl};
pub use catalog::CatalogRows;
pub use class::Class;
pub use error::CatalogError;
pub use placement::{shard_local, spreadable, CoordinatorWhy, Placement};
pub use route::{Decision, Route, RouteKind, ShardRef};
pub use router::{Prepared, Router, RouterOptions};
pub use topology::Topology;
