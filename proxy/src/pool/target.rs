//! Which server a pool's connections go to: the coordinator (`upstream.url`), or one Citus node
//! by the `host:port` its `pg_dist_node` row names (shard-local routing, `routing.shard_local`).

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Target {
    #[default]
    Coordinator,
    /// `host:port` as the metadata names it, shared with the topology snapshot (a clone is a
    /// reference count, not a copy).
    Node(Arc<str>),
}

impl Target {
    /// The label SHOW POOLS and the metrics use.
    pub fn label(&self) -> &str {
        match self {
            Target::Coordinator => "coordinator",
            Target::Node(addr) => addr,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
