//! Where a transaction may run, read off the route of the statement that starts it
//! (`routing.shard_local`, `routing.spread_reads`). The router says which node may plan it;
//! this adds the session-level choices: a lone BEGIN waits for the statement after it, and
//! spread reads take the nodes with metadata in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use citus_proxy_router::analysis::{StatementKind, TxControl};
use citus_proxy_router::{shard_local, spreadable, Decision, Placement as Where, Topology};

use crate::hooks::Placement;

/// Shared by every session: the two settings and the turn of the spread reads.
pub struct Placing {
    shard_local: bool,
    spread: bool,
    next: AtomicUsize,
}

impl Placing {
    /// None when both settings are off (sessions then skip the work entirely).
    pub fn new(shard_local: bool, spread: bool) -> Option<Arc<Placing>> {
        (shard_local || spread).then(|| Arc::new(Placing { shard_local, spread, next: AtomicUsize::new(0) }))
    }

    pub fn place(&self, d: &Decision, topo: &Topology, search_path: &[&str]) -> Placement {
        if is_lone_begin(d) {
            return Placement::Begin;
        }
        if self.shard_local {
            match shard_local(d, topo, search_path) {
                Where::Node(i) => {
                    if let Some(node) = topo.node(i) {
                        return Placement::Node(Arc::clone(node.addr_shared()));
                    }
                }
                Where::Coordinator(why) => tracing::debug!(why = why.as_str(), "placed on the coordinator"),
            }
        }
        if self.spread && spreadable(d, topo, search_path) {
            let nodes = topo.query_nodes();
            if !nodes.is_empty() {
                let turn = self.next.fetch_add(1, Ordering::Relaxed) % nodes.len();
                match nodes.get(turn).and_then(|i| topo.node(*i)) {
                    // The coordinator's turn goes to its own pool, not to a node pool of it.
                    Some(node) if node.is_coordinator() => return Placement::Coordinator,
                    Some(node) => return Placement::Spread(Arc::clone(node.addr_shared())),
                    None => {}
                }
            }
        }
        Placement::Coordinator
    }
}

/// `BEGIN` / `START TRANSACTION` alone in its Query.
fn is_lone_begin(d: &Decision) -> bool {
    matches!(d.analysis.statements.as_slice(), [only] if only.kind == StatementKind::Transaction { control: TxControl::Begin })
}
