//! One session's routing state: its prepared statements' analyses, its settings and temporary
//! relations, and the decision of the extended-protocol batch in flight.

use std::sync::Arc;

use citus_proxy_cache::Protocol;
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::{Class, Decision, Prepared, Route, Router, Topology};
use tracing::debug;

use super::on_stack::with_slice;
use super::placing::Placing;
use crate::caching::{CachePlan, SessionCache, Statement};
use crate::hooks::{Placement, ReadyWait, StatementHooks, StatementNote};
use crate::metadata::SessionMetadata;
use crate::settings::words::{first_word, identifier};
use crate::settings::{session_command, SessionCommand, SessionSettings, TempRelations};
use crate::shapes::{Shapes, OVERFLOW};
use crate::wire::bind::BindView;
use crate::wire::error_response::{encode, Severity};
use crate::wire::parse::ParseView;
use crate::wire::ready::TxStatus;

/// The longest a session's ReadyForQuery waits for the metadata reload its statement asked for
/// (a catalog that does not answer must not stall the client).
const REFRESH_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A prepared statement's analysis, its SQL and declared parameter types.
struct PreparedEntry {
    prepared: Arc<Prepared>,
    sql: Arc<str>,
    types: Vec<u32>,
    /// Closed (protocol Close, DEALLOCATE, DISCARD ALL): a Bind of it gets the coordinator's
    /// 26000, never a cached answer. The analysis is kept in case the close did not happen (a
    /// Close skipped after an error in its batch), so a write is still invalidated.
    closed: bool,
}

pub struct RoutingHooks {
    router: Arc<Router>,
    /// The session database's snapshot.
    metadata: SessionMetadata,
    shapes: Arc<Shapes>,
    empty: Arc<Topology>,
    settings: SessionSettings,
    temp: TempRelations,
    prepared: ahash::AHashMap<Vec<u8>, PreparedEntry>,
    /// The first Bind's decision of the batch the next Sync closes, with its statement's SQL.
    batch: Option<(Decision, Arc<str>)>,
    /// A statement that changes Citus metadata ran; reload once the transaction is over.
    refresh_when_idle: bool,
    /// The transaction that changed metadata ended: reload before its ReadyForQuery is relayed.
    refresh_due: bool,
    /// None when the result cache is off.
    cache: Option<SessionCache>,
    /// None unless transactions are placed on nodes (shard-local routing).
    placing: Option<Arc<Placing>>,
    /// Where the batch's first Bind may run, until the relay asks.
    bind_placement: Placement,
}

impl RoutingHooks {
    pub fn new(
        router: Arc<Router>,
        metadata: SessionMetadata,
        shapes: Arc<Shapes>,
        settings: SessionSettings,
        empty: Arc<Topology>,
        cache: Option<SessionCache>,
        placing: Option<Arc<Placing>>,
    ) -> RoutingHooks {
        RoutingHooks {
            router,
            metadata,
            shapes,
            empty,
            settings,
            temp: TempRelations::default(),
            prepared: ahash::AHashMap::new(),
            batch: None,
            refresh_when_idle: false,
            refresh_due: false,
            cache,
            placing,
            bind_placement: Placement::Coordinator,
        }
    }

    /// What the statements of one Query or Bind change in the session: settings, temporary
    /// relations, prepared statements, and whether metadata must be reloaded.
    fn follow(&mut self, statements: &[citus_proxy_router::StatementInfo], sql: &str, route: Option<&Route>) {
        self.settings.on_statements(statements, sql);
        let mut scanned = false;
        for st in statements {
            if st.changes_metadata {
                self.refresh_when_idle = true;
            }
            // Only statements that can create a relation are read for temporary ones (SELECT
            // INTO is a read the router gives up on).
            let creates = matches!(st.kind, StatementKind::Ddl | StatementKind::Unparsed { .. })
                || st.touches_temp
                || (st.kind == StatementKind::Read && matches!(route, Some(Route::Unknown { .. })));
            if creates && !scanned {
                self.temp.note_created(sql);
                scanned = true;
            }
            if matches!(st.kind, StatementKind::Utility) {
                self.follow_utility(sql, statements.len() == 1);
            }
        }
    }

    fn follow_utility(&mut self, sql: &str, single: bool) {
        match session_command(sql).filter(|_| single) {
            Some(SessionCommand::DiscardAll) => {
                self.close_all();
                self.temp.clear();
            }
            Some(SessionCommand::DiscardTemp) => self.temp.clear(),
            Some(SessionCommand::DeallocateAll) => self.close_all(),
            Some(SessionCommand::Deallocate(name)) => self.close(identifier(name).as_bytes()),
            _ if first_word(sql).eq_ignore_ascii_case("PREPARE") => {
                // SQL-level statements share the protocol's names: a closed one may come back
                // with another text (a new name is unknown, and its Binds are treated as such).
                self.prepared.retain(|_, e| !e.closed);
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &[u8]) {
        if let Some(e) = self.prepared.get_mut(name) {
            e.closed = true;
        }
    }

    fn close_all(&mut self) {
        for e in self.prepared.values_mut() {
            e.closed = true;
        }
    }

    /// `sql` is the statement text, used to display the shape on first sight only.
    fn note(&self, decision: &Decision, sql: &str) -> StatementNote {
        let route = decision.route.kind();
        debug!(route = route.as_str(), class = decision.class.as_str(), reason = %decision.reason, "routed");
        // The id is a hash of the shape text made once per analysis: stable for the process,
        // so an evicted and re-analysed shape is counted under the same text.
        let id = if decision.analysis.shape_id == OVERFLOW { OVERFLOW + 1 } else { decision.analysis.shape_id };
        let shape = self.shapes.register(id, || citus_proxy_router::shape::normalize(sql).shape);
        let notice = self.settings.report_routing().then(|| {
            let msg = format!("citus-proxy route: {}", decision.explain_text());
            encode(Severity::Notice, "00000", &msg, None).freeze()
        });
        StatementNote { route, class: decision.class, notice, shape: Some(shape), cache: CachePlan::None, placement: Default::default() }
    }

    /// The explanation is built only for a NOTICE or a debug log line that will show it.
    fn explain(&self) -> bool {
        self.settings.report_routing() || tracing::enabled!(tracing::Level::DEBUG)
    }
}

/// PostgreSQL looks in the session's `pg_temp` before the search path: a statement naming one of
/// the session's temporary relations runs on the coordinator alone.
fn resolve_temp(d: &mut Decision, temp: &TempRelations, explain: bool) {
    if temp.is_empty() {
        return;
    }
    let shadowed: Vec<bool> = d.analysis.statements.iter().map(|s| s.tables.iter().any(|t| temp.shadows(t))).collect();
    if !shadowed.contains(&true) {
        return;
    }
    let local = || Route::Local { shards: Vec::new() };
    if let [info] = d.analysis.statements.as_slice() {
        d.route = local();
        d.class = Class::of(info, &d.route, usize::MAX);
    } else {
        for (r, s) in d.statements.iter_mut().zip(&shadowed) {
            if *s {
                *r = local();
            }
        }
        let all_local = d.statements.iter().all(|r| matches!(r, Route::Local { .. } | Route::Utility));
        d.route = if all_local { local() } else { Route::Unknown { reason: "some statements use temporary tables".into() } };
    }
    if explain {
        d.reason = "a relation it names is this session's temporary table (pg_temp is searched first)".into();
    }
}

impl StatementHooks for RoutingHooks {
    fn on_query(&mut self, sql: &[u8]) -> StatementNote {
        let Ok(sql) = std::str::from_utf8(sql) else {
            // Not UTF-8 (a client_encoding other than UTF8): forwarded, but not analysed, so
            // whatever it wrote or set is unknown.
            self.settings.lose_track();
            let mut note = StatementNote::default();
            if let Some(c) = &mut self.cache {
                note.cache = c.on_unknown_query();
            }
            return note;
        };
        let guard = self.metadata.store().topology();
        let topo = guard.as_deref().unwrap_or(&self.empty);
        let explain = self.explain();
        let (router, cache, settings, temp, placing) = (&self.router, &mut self.cache, &self.settings, &self.temp, &self.placing);
        let sp = settings.search_path();
        let (decision, plan, placement) = with_slice(sp.len(), sp.iter().map(String::as_str), "", |path| {
            let mut decision = router.route_query_with(sql, topo, path, explain);
            resolve_temp(&mut decision, temp, explain);
            let placement = placing.as_ref().map(|p| p.place(&decision, topo, path)).unwrap_or_default();
            let plan = match cache {
                Some(c) => {
                    let shape = decision.analysis.shape_id;
                    c.on_query(&Statement { decision: &decision, sql, topo, search_path: path, settings, temp, shape })
                }
                None => CachePlan::None,
            };
            (decision, plan, placement)
        });
        drop(guard);
        self.follow(&decision.analysis.statements, sql, Some(&decision.route));
        let mut note = self.note(&decision, sql);
        note.cache = plan;
        note.placement = placement;
        note
    }

    fn on_parse(&mut self, parse: &ParseView<'_>) {
        let Ok(sql) = std::str::from_utf8(parse.sql) else {
            self.prepared.remove(parse.statement);
            return;
        };
        // Drivers re-send the same unnamed Parse for every execution: keep its analysis.
        if let Some(old) = self.prepared.get_mut(parse.statement) {
            if *old.sql == *sql && old.types.iter().copied().eq(parse.param_types()) {
                old.closed = false;
                return;
            }
        }
        let types: Vec<u32> = parse.param_types().collect();
        let prepared = self.router.prepare(sql, &types);
        let entry = PreparedEntry { prepared, sql: Arc::from(sql), types, closed: false };
        self.prepared.insert(parse.statement.to_vec(), entry);
    }

    fn on_bind(&mut self, bind: &BindView<'_>) {
        let Some(entry) = self.prepared.get(bind.statement) else {
            self.settings.lose_track();
            if let Some(c) = &mut self.cache {
                c.on_unknown_bind();
            }
            return;
        };
        let (prepared, sql) = (Arc::clone(&entry.prepared), Arc::clone(&entry.sql));
        // Without the cache only the batch's first Bind is routed (its route labels the batch);
        // with it every Bind is, since each may write.
        if self.batch.is_none() || self.cache.is_some() {
            let servable = !entry.closed;
            let guard = self.metadata.store().topology();
            let topo = guard.as_deref().unwrap_or(&self.empty);
            let explain = self.explain();
            let (router, cache, settings, temp, placing) = (&self.router, &mut self.cache, &self.settings, &self.temp, &self.placing);
            let first = self.batch.is_none();
            let mut placement = Placement::Coordinator;
            let sp = settings.search_path();
            let decision = with_slice(sp.len(), sp.iter().map(String::as_str), "", |path| {
                with_slice(bind.param_count(), bind.params(), None, |params| {
                    with_slice(bind.param_formats().len(), bind.param_formats(), 0, |formats| {
                        let mut decision = router.route_bound_with(&prepared, params, formats, topo, path, explain);
                        resolve_temp(&mut decision, temp, explain);
                        if let Some(c) = cache {
                            let shape = decision.analysis.shape_id;
                            let st = Statement { decision: &decision, sql: &sql, topo, search_path: path, settings, temp, shape };
                            c.on_bind(&st, bind, prepared.declared_param_types(), servable);
                        }
                        if let (Some(p), true) = (placing, first) {
                            placement = p.place(&decision, topo, path);
                        }
                        decision
                    })
                })
            });
            drop(guard);
            if first {
                self.batch = Some((decision, Arc::clone(&sql)));
                self.bind_placement = placement;
            }
        }
        self.follow(&prepared.analysis.statements, &sql, None);
    }

    fn bind_placement(&mut self) -> Placement {
        std::mem::take(&mut self.bind_placement)
    }

    fn on_close(&mut self, kind: u8, name: &[u8]) {
        if kind == b'S' {
            self.close(name);
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
            Some((d, sql)) => self.note(&d, &sql),
            None => StatementNote::default(),
        };
        note.cache = plan;
        note
    }

    fn on_parameter_status(&mut self, name: &str, value: &str) {
        // ParameterStatus follows AuthenticationOk: the client is in, so its database's snapshot
        // starts loading now, while the startup finishes.
        self.metadata.store();
        self.settings.on_parameter_status(name, value);
    }

    fn on_backend_error(&mut self, _body: &[u8]) {
        self.settings.on_error();
    }

    fn on_ready(&mut self, status: TxStatus, _elapsed: std::time::Duration) {
        self.settings.on_ready(status);
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
