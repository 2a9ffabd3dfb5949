//! One session's side of the cache: its settings as keys see them, and the read or writes of
//! the extended-protocol batch in flight. Fed by the routing hooks with each route decision and
//! the session's settings tracker (which the cache only reads).

use std::time::Duration;

use citus_proxy_cache::{KeyBuilder, KeyParts, Protocol, SessionPrefix, SessionView, StatementFacts, WriteScope};
use citus_proxy_router::{Decision, Topology};

use super::plan::{CachePlan, ReadPlan};
use super::Planner;
use crate::settings::{SessionSettings, TempRelations};
use crate::wire::bind::BindView;

pub struct SessionCache {
    planner: Planner,
    /// The session as keys and the policy see it, copied from the settings tracker when its
    /// version moves.
    view: SessionView,
    view_version: Option<u64>,
    /// The batch's one cacheable read: its facts, TTL and key without the protocol yet.
    batch_read: Option<(StatementFacts, Duration, KeyBuilder)>,
    batch_binds: usize,
    batch_writes: Vec<WriteScope>,
    /// The hashed session part of every key, with the settings version it was made from.
    prefix: Option<(u64, SessionPrefix)>,
}

/// What a statement is, for the cache: its decision and text, and the session it runs in.
pub struct Statement<'a> {
    pub decision: &'a Decision,
    pub sql: &'a str,
    pub topo: &'a Topology,
    pub search_path: &'a [&'a str],
    pub settings: &'a SessionSettings,
    pub temp: &'a TempRelations,
    /// The statement's shape id (for shape rules).
    pub shape: u64,
}

impl SessionCache {
    pub fn new(planner: Planner, database: &str, role: &str) -> SessionCache {
        SessionCache {
            planner,
            view: SessionView { database: database.to_string(), role: role.to_string(), ..SessionView::default() },
            view_version: None,
            batch_read: None,
            batch_binds: 0,
            batch_writes: Vec::new(),
            prefix: None,
        }
    }

    /// Brings the view up to the tracker's settings: every one a statement can read, except
    /// those the operator listed in `cache.ignored_settings`.
    fn sync(&mut self, settings: &SessionSettings) {
        if self.view_version == Some(settings.version()) {
            return;
        }
        let planner = &self.planner;
        self.view.settings = settings.values().iter().filter(|(k, _)| !planner.ignores(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        self.view.untracked_settings = settings.untracked();
        self.view_version = Some(settings.version());
    }

    /// A key builder starting from the session's part, hashed again only after a change.
    fn key(&mut self) -> KeyBuilder {
        let version = self.view_version.unwrap_or(0);
        match &self.prefix {
            Some((v, p)) if *v == version => KeyParts::builder_from(p),
            _ => {
                let p = SessionPrefix::new(&self.view);
                let b = KeyParts::builder_from(&p);
                self.prefix = Some((version, p));
                b
            }
        }
    }

    /// A simple-protocol Query.
    pub fn on_query(&mut self, st: &Statement<'_>) -> CachePlan {
        self.sync(st.settings);
        let writes = self.planner.writes(st.decision, st.topo, st.search_path, st.sql);
        if !writes.is_empty() {
            return CachePlan::Write(writes);
        }
        match self.planner.read(st.decision, st.topo, st.search_path, &self.view, st.temp, st.shape) {
            Some((facts, ttl)) => {
                let parts = self.key().statement(st.sql).protocol(Protocol::Simple).finish();
                CachePlan::Read(Box::new(ReadPlan { facts, parts, ttl }))
            }
            None => CachePlan::None,
        }
    }

    /// A Bind of a prepared statement; `declared` are the Parse's parameter type OIDs. A
    /// statement the client closed is not `servable`: its Bind must reach the coordinator (which
    /// answers 26000), though what it would write is still invalidated.
    pub fn on_bind(&mut self, st: &Statement<'_>, bind: &BindView<'_>, declared: &[u32], servable: bool) {
        self.batch_binds += 1;
        self.sync(st.settings);
        let writes = self.planner.writes(st.decision, st.topo, st.search_path, st.sql);
        if !writes.is_empty() {
            for w in writes {
                if !self.batch_writes.contains(&w) {
                    self.batch_writes.push(w);
                }
            }
            return;
        }
        if self.batch_binds > 1 || !servable {
            self.batch_read = None;
            return;
        }
        if let Some((facts, ttl)) = self.planner.read(st.decision, st.topo, st.search_path, &self.view, st.temp, st.shape) {
            let formats: Vec<i16> = bind.param_formats().collect();
            let results: Vec<i16> = bind.result_formats().collect();
            let key =
                self.key().statement(st.sql).param_types(declared).param_formats(&formats).params(bind.params()).result_formats(&results);
            self.batch_read = Some((facts, ttl, key));
        }
    }

    /// A Bind whose statement the proxy has no analysis of (its Parse was not seen or not
    /// UTF-8): nothing in this batch may be cached, and whatever it wrote is unknown.
    pub fn on_unknown_bind(&mut self) {
        self.batch_binds += 1;
        self.batch_read = None;
        self.batch_writes = vec![WriteScope::Everything];
    }

    /// A Query the proxy could not analyse (not UTF-8).
    pub fn on_unknown_query(&mut self) -> CachePlan {
        CachePlan::Write(vec![WriteScope::Everything])
    }

    pub fn candidate(&self) -> bool {
        self.batch_read.is_some() && self.batch_writes.is_empty()
    }

    /// The Sync closing the batch: `cacheable` is its protocol when its shape can be served.
    pub fn on_sync(&mut self, cacheable: Option<Protocol>) -> CachePlan {
        self.batch_binds = 0;
        let read = self.batch_read.take();
        let writes = std::mem::take(&mut self.batch_writes);
        if !writes.is_empty() {
            return CachePlan::Write(writes);
        }
        match (read, cacheable) {
            (Some((facts, ttl, key)), Some(protocol)) => {
                CachePlan::Read(Box::new(ReadPlan { facts, parts: key.protocol(protocol).finish(), ttl }))
            }
            _ => CachePlan::None,
        }
    }

    pub fn on_ready(&mut self, in_transaction: bool) {
        self.view.in_transaction = in_transaction;
    }
}
