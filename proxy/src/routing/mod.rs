//! Routing in the connection loop: every Query and every Bind gets a route decision from the
//! router over the current metadata snapshot and the session's settings (`crate::settings`).
//! The decision labels the statement's metrics, is logged at debug level, and, after
//! `SET citus_proxy.report_routing = on`, is sent to the client as a NOTICE before the
//! statement's result.

mod hooks;
mod on_stack;
mod placing;

use std::sync::Arc;

use citus_proxy_router::{Router, Topology};

use crate::caching::{Planner, SessionCache};
use crate::hooks::{HooksFactory, StatementHooks};
use crate::metadata::{MetadataStores, SessionMetadata};
use crate::settings::SessionSettings;
use crate::shapes::Shapes;

pub use hooks::RoutingHooks;
pub use placing::Placing;

/// Shared by every session's hooks.
pub struct RoutingFactory {
    router: Arc<Router>,
    /// Each session routes on its own database's snapshot.
    stores: Arc<MetadataStores>,
    shapes: Arc<Shapes>,
    /// `routing.search_path`: a session's search_path until it sets its own.
    default_search_path: String,
    /// Used while no snapshot has loaded yet: every table is then unknown.
    empty: Arc<Topology>,
    /// None when the result cache is off.
    cache: Option<Planner>,
    /// None unless `routing.shard_local` or `routing.spread_reads` is on.
    placing: Option<Arc<Placing>>,
}

impl RoutingFactory {
    pub fn new(router: Arc<Router>, stores: Arc<MetadataStores>, shapes: Arc<Shapes>, search_path: &str) -> RoutingFactory {
        RoutingFactory {
            router,
            stores,
            shapes,
            default_search_path: search_path.to_string(),
            empty: Arc::new(Topology::default()),
            cache: None,
            placing: None,
        }
    }

    /// Sessions place transactions on nodes as `placing` says (shard-local routing).
    pub fn with_placing(mut self, placing: Option<Arc<Placing>>) -> RoutingFactory {
        self.placing = placing;
        self
    }

    /// Sessions plan cache lookups and invalidations with `planner`.
    pub fn with_cache(mut self, planner: Option<Planner>) -> RoutingFactory {
        self.cache = planner;
        self
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}

impl HooksFactory for RoutingFactory {
    fn session_hooks(&self, user: &str, database: &str, startup: &[(String, String)]) -> Box<dyn StatementHooks> {
        let cache = self.cache.as_ref().map(|p| SessionCache::new(p.clone(), database, user));
        Box::new(RoutingHooks::new(
            Arc::clone(&self.router),
            SessionMetadata::new(Arc::clone(&self.stores), database),
            Arc::clone(&self.shapes),
            SessionSettings::new(user, startup, &self.default_search_path),
            Arc::clone(&self.empty),
            cache,
            self.placing.clone(),
        ))
    }
}
