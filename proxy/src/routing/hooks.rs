//! One session's routing state: its prepared statements' analyses, its search_path, whether it
//! asked for routing notices, and the decision of the extended-protocol batch in flight.

use std::sync::Arc;

use citus_proxy_cache::Protocol;
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::{Decision, Prepared, Router, Topology};
use tracing::debug;

use super::on_stack::with_slice;
use super::session_settings::{parse_bool, parse_search_path};
use crate::caching::{CachePlan, SessionCache, Statement};
use crate::hooks::{ReadyWait, StatementHooks, StatementNote};
use crate::metadata::SessionMetadata;
use crate::metrics::labels::{ClassLabel, RouteLabel};
use crate::shapes::Shapes;
use crate::wire::bind::BindView;
use crate::wire::error_response::{encode, Severity};
use crate::wire::parse::ParseView;
use crate::wire::ready::TxStatus;

/// The custom setting that turns routing notices on for a session (PostgreSQL accepts any
/// two-part name, so the statement itself still goes to the coordinator).
const REPORT_SETTING: &str = "citus_proxy.report_routing";

/// The longest a session's ReadyForQuery waits for the metadata reload its statement asked for
/// (a catalog that does not answer must not stall the client).
const REFRESH_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A prepared statement's analysis, its SQL, declared parameter types and (when the cache has
/// shape rules) its shape hash.
struct PreparedEntry {
    prepared: Arc<Prepared>,
    sql: Arc<str>,
    types: Vec<u32>,
    shape: u64,
}

pub struct RoutingHooks {
    router: Arc<Router>,
    /// The session database's snapshot.
    metadata: SessionMetadata,
    shapes: Arc<Shapes>,
    empty: Arc<Topology>,
    default_search_path: Vec<String>,
    search_path: Vec<String>,
    prepared: ahash::AHashMap<Vec<u8>, PreparedEntry>,
    /// The first Bind's decision of the batch the next Sync closes, with its statement's SQL.
    batch: Option<(Decision, Arc<str>)>,
    report: bool,
    /// A statement that changes Citus metadata ran; reload once the transaction is over.
    refresh_when_idle: bool,
    /// The transaction that changed metadata ended: reload before its ReadyForQuery is relayed.
    refresh_due: bool,
    /// None when the result cache is off.
    cache: Option<SessionCache>,
}

impl RoutingHooks {
    pub fn new(
        router: Arc<Router>,
        metadata: SessionMetadata,
        shapes: Arc<Shapes>,
        search_path: Vec<String>,
        empty: Arc<Topology>,
        cache: Option<SessionCache>,
    ) -> RoutingHooks {
        RoutingHooks {
            router,
            metadata,
            shapes,
            empty,
            search_path: search_path.clone(),
            default_search_path: search_path,
            prepared: ahash::AHashMap::new(),
            batch: None,
            report: false,
            refresh_when_idle: false,
            refresh_due: false,
            cache,
        }
    }

    /// Session settings that statements change (search_path, the report switch).
    fn track_settings(&mut self, decision: &Decision) {
        for st in &decision.analysis.statements {
            match &st.kind {
                StatementKind::Set { name, value, .. } => match name.to_ascii_lowercase().as_str() {
                    "search_path" => self.search_path = parse_search_path(value),
                    REPORT_SETTING => {
                        if let Some(on) = parse_bool(value) {
                            self.report = on;
                        }
                    }
                    _ => {}
                },
                StatementKind::Utility if st.functions.is_empty() => {}
                _ => {}
            }
            if st.changes_metadata {
                self.refresh_when_idle = true;
            }
        }
    }

    /// `sql` is the statement text, used to display the shape on first sight only.
    fn note(&self, decision: &Decision, sql: &str) -> StatementNote {
        let route = RouteLabel::parse(decision.route.word()).unwrap_or(RouteLabel::Unknown);
        let class = ClassLabel::parse(decision.class.as_str()).unwrap_or(ClassLabel::Other);
        debug!(route = route.as_str(), class = class.as_str(), reason = %decision.reason, "routed");
        // The cached analysis is shared by every statement of one shape, so its address names
        // the shape without hashing the text again.
        let id = Arc::as_ptr(&decision.analysis) as usize as u64;
        let shape = self.shapes.register(id, || citus_proxy_router::shape::normalize(sql).shape);
        let notice = self.report.then(|| {
            let msg = format!("citus-proxy route: {}", decision.explain_text());
            encode(Severity::Notice, "00000", &msg, None).freeze()
        });
        StatementNote { route, class, notice, shape: Some(shape), cache: CachePlan::None }
    }

    /// The explanation is built only for a NOTICE or a debug log line that will show it.
    fn explain(&self) -> bool {
        self.report || tracing::enabled!(tracing::Level::DEBUG)
    }
}

impl StatementHooks for RoutingHooks {
    fn on_query(&mut self, sql: &[u8]) -> StatementNote {
        let Ok(sql) = std::str::from_utf8(sql) else {
            // Not UTF-8 (a client_encoding other than UTF8): forwarded, but not analysed, so
            // whatever it wrote is unknown to the cache.
            let mut note = StatementNote::default();
            if let Some(c) = &mut self.cache {
                note.cache = c.on_unknown_query();
            }
            return note;
        };
        let guard = self.metadata.store().topology();
        let topo = guard.as_deref().unwrap_or(&self.empty);
        let explain = self.explain();
        let (router, cache) = (&self.router, &mut self.cache);
        let sp = &self.search_path;
        let (decision, plan) = with_slice(sp.len(), sp.iter().map(String::as_str), "", |path| {
            let decision = router.route_query_with(sql, topo, path, explain);
            let plan = match cache {
                Some(c) => c.on_query(&Statement { decision: &decision, sql, topo, search_path: path }),
                None => CachePlan::None,
            };
            (decision, plan)
        });
        if is_reset_all(sql) {
            self.search_path = self.default_search_path.clone();
            self.report = false;
        }
        self.track_settings(&decision);
        let mut note = self.note(&decision, sql);
        note.cache = plan;
        note
    }

    fn on_parse(&mut self, parse: &ParseView<'_>) {
        let Ok(sql) = std::str::from_utf8(parse.sql) else {
            self.prepared.remove(parse.statement);
            return;
        };
        // Drivers re-send the same unnamed Parse for every execution: keep its analysis.
        if let Some(old) = self.prepared.get(parse.statement) {
            if *old.sql == *sql && old.types.iter().copied().eq(parse.param_types()) {
                return;
            }
        }
        let types: Vec<u32> = parse.param_types().collect();
        let prepared = self.router.prepare(sql, &types);
        let shape = match &self.cache {
            Some(c) if c.needs_shape() => crate::caching::shape_hash(sql),
            _ => 0,
        };
        self.prepared.insert(parse.statement.to_vec(), PreparedEntry { prepared, sql: Arc::from(sql), types, shape });
    }

    fn on_bind(&mut self, bind: &BindView<'_>) {
        // Without the cache only the batch's first Bind is routed (its route labels the batch);
        // with it every Bind is, since each may write.
        if self.batch.is_some() && self.cache.is_none() {
            return;
        }
        let Some(entry) = self.prepared.get(bind.statement) else {
            if let Some(c) = &mut self.cache {
                c.on_unknown_bind();
            }
            return;
        };
        let guard = self.metadata.store().topology();
        let topo = guard.as_deref().unwrap_or(&self.empty);
        let explain = self.report || tracing::enabled!(tracing::Level::DEBUG);
        let (router, cache, sp) = (&self.router, &mut self.cache, &self.search_path);
        let decision = with_slice(sp.len(), sp.iter().map(String::as_str), "", |path| {
            with_slice(bind.param_count(), bind.params(), None, |params| {
                with_slice(bind.param_formats().len(), bind.param_formats(), 0, |formats| {
                    let decision = router.route_bound_with(&entry.prepared, params, formats, topo, path, explain);
                    if let Some(c) = cache {
                        let st = Statement { decision: &decision, sql: &entry.sql, topo, search_path: path };
                        c.on_bind(&st, bind, entry.prepared.declared_param_types(), entry.shape);
                    }
                    decision
                })
            })
        });
        if self.batch.is_none() {
            self.batch = Some((decision, Arc::clone(&entry.sql)));
        }
    }

    fn on_unseen_parse(&mut self) {
        // Which statement it replaced is not known: forget them all (their Binds then route as
        // unknown, and the cache treats them as writing anything).
        self.prepared.clear();
    }

    fn cache_candidate(&self) -> bool {
        self.cache.as_ref().is_some_and(SessionCache::candidate)
    }

    fn on_sync(&mut self, cacheable: Option<Protocol>) -> StatementNote {
        let plan = match &mut self.cache {
            Some(c) => c.on_sync(cacheable),
            None => CachePlan::None,
        };
        let mut note = match self.batch.take() {
            Some((d, sql)) => {
                self.track_settings(&d);
                self.note(&d, &sql)
            }
            None => StatementNote::default(),
        };
        note.cache = plan;
        note
    }

    fn on_parameter_status(&mut self, name: &str, value: &str) {
        // ParameterStatus follows AuthenticationOk: the client is in, so its database's snapshot
        // starts loading now, while the startup finishes.
        self.metadata.store();
        if let Some(c) = &mut self.cache {
            c.on_parameter_status(name, value);
        }
    }

    fn on_ready(&mut self, status: TxStatus, _elapsed: std::time::Duration) {
        if let Some(c) = &mut self.cache {
            c.on_ready(status != TxStatus::Idle);
        }
        if self.refresh_when_idle && status == TxStatus::Idle {
            self.refresh_when_idle = false;
            self.refresh_due = true;
        }
    }

    fn before_ready(&mut self) -> Option<ReadyWait> {
        // The next statement of this session must route on the new snapshot: the relay holds
        // this ReadyForQuery until a load that began after the change has finished.
        std::mem::take(&mut self.refresh_due).then(|| Box::pin(self.metadata.store().refreshed(REFRESH_WAIT_LIMIT)) as ReadyWait)
    }
}

/// RESET ALL / DISCARD ALL put every session setting back.
fn is_reset_all(sql: &str) -> bool {
    matches!(super::session_settings::reset_target(sql), Some(super::session_settings::ResetTarget::All))
}
