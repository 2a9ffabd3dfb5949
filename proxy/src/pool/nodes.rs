//! Pools of Citus nodes (shard-local routing): one per coordinator pool and node, made when a
//! transaction is first placed on that node, logging in with the coordinator pool's credential.
//! A node that refused a connection is passed over for a while, so new transactions go to the
//! coordinator instead of each paying a failed connect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::key::PoolKey;
use super::pools::{Pool, Pools};
use super::target::Target;
use crate::context::Context;
use crate::net::upstream::Connector;

/// How long a node that refused stays passed over before a transaction tries it again.
pub const NODE_RETRY: Duration = Duration::from_secs(5);

/// What a node pool has that a coordinator pool does not.
pub struct NodeSide {
    pub connector: Arc<Connector>,
    /// The coordinator pool of the same role and database (its credential is the one to use).
    pub base: Weak<Pool>,
    /// Until when the node is passed over, after it refused.
    down_until: Mutex<Option<Instant>>,
    /// Whether `down_until` is set: the common case (the node answers) reads only this.
    down: AtomicBool,
}

impl NodeSide {
    /// Whether a transaction may be sent to the node now.
    pub fn available(&self) -> bool {
        if !self.down.load(Ordering::Relaxed) {
            return true;
        }
        match *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(t) => Instant::now() >= t,
        }
    }

    /// The node refused or could not be reached: one log line when it goes down, not one per
    /// transaction.
    pub fn refused(&self, key: &PoolKey, error: &dyn std::fmt::Display) {
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::warn!(
                node = %key.target, pool = %key, %error,
                "node refused a connection; its transactions go to the coordinator (tried again every {}s)",
                NODE_RETRY.as_secs()
            );
        }
        *down = Some(Instant::now() + NODE_RETRY);
        self.down.store(true, Ordering::Relaxed);
    }

    /// The node gave a connection: if it had been passed over, say it is back.
    pub fn answered(&self, key: &PoolKey) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        self.down.store(false, Ordering::Relaxed);
        if down.take().is_some() {
            tracing::info!(node = %key.target, pool = %key, "node answers again; shard-local transactions go to it");
        }
    }
}

impl Pools {
    /// The pool of `base`'s role and database on the node at `addr` (`host:port`), made on first
    /// use; None when the address cannot be connected to as written.
    pub fn node_pool(&self, ctx: &Context, base: &Arc<Pool>, addr: &Arc<str>) -> Option<Arc<Pool>> {
        if let Some(p) = base.node_pools.get(&**addr) {
            return Some(Arc::clone(p.value()));
        }
        let connector = Arc::new(ctx.connector.for_node(addr)?);
        let key = base.key.on(Target::Node(Arc::clone(addr)));
        let entry = base.node_pools.entry(Arc::clone(addr)).or_insert_with(|| {
            let side = NodeSide { connector, base: Arc::downgrade(base), down_until: Mutex::new(None), down: AtomicBool::new(false) };
            let pool = Arc::new(Pool::new(key.clone(), Some(side)));
            self.map.insert(key, Arc::clone(&pool));
            pool
        });
        Some(Arc::clone(entry.value()))
    }
}

/// Transactions served and fallbacks per server, summed over pools (for the metrics).
pub fn served_by_target(pools: &Pools) -> Vec<(Target, u64, u64)> {
    let mut out: Vec<(Target, u64, u64)> = Vec::new();
    for pool in pools.all() {
        let (served, fell) = (pool.served.load(Ordering::Relaxed), pool.fallbacks.load(Ordering::Relaxed));
        match out.iter_mut().find(|(t, _, _)| *t == pool.key.target) {
            Some((_, s, f)) => {
                *s += served;
                *f += fell;
            }
            None => out.push((pool.key.target.clone(), served, fell)),
        }
    }
    out
}
