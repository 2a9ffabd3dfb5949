//! Where routing, caching and metrics plug into the connection loop. The session calls these with
//! borrowed views of the frames it already holds (no copies); one hook object lives per session
//! and sees its statements in order.

use std::time::Duration;

use citus_proxy_cache::Protocol;

use crate::caching::CachePlan;
use crate::metrics::labels::{Class, RouteKind};
use crate::wire::bind::BindView;
use crate::wire::parse::ParseView;
use crate::wire::ready::TxStatus;

/// What a hook attaches to a statement: the labels its latency is recorded under, optionally a
/// NoticeResponse frame to put before its result, and what the result cache should do.
#[derive(Debug)]
pub struct StatementNote {
    pub route: RouteKind,
    pub class: Class,
    pub notice: Option<bytes::Bytes>,
    /// The statement's shape in the per-shape statistics (SHOW ROUTES), when analysed.
    pub shape: Option<u64>,
    pub cache: CachePlan,
    /// Where a transaction this statement starts may run (shard-local routing).
    pub placement: Placement,
}

impl Default for StatementNote {
    fn default() -> Self {
        StatementNote {
            route: RouteKind::Unknown,
            class: Class::Other,
            notice: None,
            shape: None,
            cache: CachePlan::None,
            placement: Placement::Coordinator,
        }
    }
}

/// Where the transaction a statement starts may run (`routing.shard_local`,
/// `routing.spread_reads`); the session follows it only when the statement does start one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Placement {
    #[default]
    Coordinator,
    /// Single-shard: the node (`host:port`) holding the shard; the whole transaction stays there.
    Node(std::sync::Arc<str>),
    /// A multi-shard read any node with metadata can plan: this one, if it runs outside a
    /// transaction block.
    Spread(std::sync::Arc<str>),
    /// A lone BEGIN: where its transaction runs is decided by the statement after it.
    Begin,
}

/// Something the relay must finish before it passes a ReadyForQuery to the client.
pub type ReadyWait = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Per-session observer of the statement stream. Every method has a no-op default.
pub trait StatementHooks: Send {
    /// A simple-protocol Query (its SQL may hold several statements; raw bytes, the client's encoding).
    fn on_query(&mut self, _sql: &[u8]) -> StatementNote {
        StatementNote::default()
    }
    /// A Parse of a named (or unnamed, empty name) prepared statement.
    fn on_parse(&mut self, _parse: &ParseView<'_>) {}
    /// A Bind: the statement it refers to, its parameter values and formats.
    fn on_bind(&mut self, _bind: &BindView<'_>) {}
    /// After the first Bind of a batch: where a transaction it starts may run.
    fn bind_placement(&mut self) -> Placement {
        Placement::Coordinator
    }
    /// A Close of a prepared statement (`kind` b'S') or portal (b'P'), by name.
    fn on_close(&mut self, _kind: u8, _name: &[u8]) {}
    /// A Sync closing an extended-protocol batch; `cacheable` is the batch's protocol when its
    /// shape is one the cache can serve (see `caching::BatchShape`).
    fn on_sync(&mut self, _cacheable: Option<Protocol>) -> StatementNote {
        StatementNote::default()
    }
    /// After a Bind: whether the batch may still be answered from the cache (the relay then
    /// holds the batch back until its Sync).
    fn cache_candidate(&self) -> bool {
        false
    }
    /// A Parse too large to inspect went by: the statement it names is no longer the one the
    /// hooks saw parsed.
    fn on_unseen_parse(&mut self) {}
    /// A ParameterStatus from the coordinator (during authentication or later).
    fn on_parameter_status(&mut self, _name: &str, _value: &str) {}
    /// ReadyForQuery for the oldest outstanding Query/Sync/FunctionCall, with the time it took
    /// from its first message.
    fn on_ready(&mut self, _status: TxStatus, _elapsed: Duration) {}
    /// Right after `on_ready`: what must finish before that ReadyForQuery is relayed (a metadata
    /// refresh the statement made due, so the session's next statement routes on it).
    fn before_ready(&mut self) -> Option<ReadyWait> {
        None
    }
    /// An ErrorResponse from the coordinator (the body, after the header).
    fn on_backend_error(&mut self, _body: &[u8]) {}
}

/// Makes the hooks of each new session.
pub trait HooksFactory: Send + Sync {
    /// `startup` holds the client's startup parameters (user and database included).
    fn session_hooks(&self, user: &str, database: &str, startup: &[(String, String)]) -> Box<dyn StatementHooks>;
}

/// Hooks that do nothing: a plain pass-through.
pub struct NoHooks;

impl StatementHooks for NoHooks {}

impl HooksFactory for NoHooks {
    fn session_hooks(&self, _: &str, _: &str, _: &[(String, String)]) -> Box<dyn StatementHooks> {
        Box::new(NoHooks)
    }
}
