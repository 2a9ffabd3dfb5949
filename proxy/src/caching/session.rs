//! One session's side of the cache: its settings as keys see them, and the read or writes of
//! the extended-protocol batch in flight. Fed by the routing hooks with each route decision.

use std::time::Duration;

use citus_proxy_cache::{KeyBuilder, KeyParts, Protocol, SessionPrefix, StatementFacts, WriteScope};
use citus_proxy_router::analysis::StatementKind;
use citus_proxy_router::{Decision, Topology};

use super::plan::{CachePlan, ReadPlan};
use super::settings::{changes_settings, Settings};
use super::Planner;
use crate::routing::{reset_target, ResetTarget};
use crate::wire::bind::BindView;

pub struct SessionCache {
    planner: Planner,
    settings: Settings,
    /// The batch's one cacheable read: its facts, TTL and key without the protocol yet.
    batch_read: Option<(StatementFacts, Duration, KeyBuilder)>,
    batch_binds: usize,
    batch_writes: Vec<WriteScope>,
    /// The hashed session part of every key, with the settings version it was made from.
    prefix: Option<(u64, SessionPrefix)>,
}

/// What a statement is, for the cache: its decision, its text and whether its parameters or
/// literals are in a Bind.
pub struct Statement<'a> {
    pub decision: &'a Decision,
    pub sql: &'a str,
    pub topo: &'a Topology,
    pub search_path: &'a [&'a str],
}

impl SessionCache {
    pub fn new(planner: Planner, database: &str, role: &str, startup: &[(String, String)]) -> SessionCache {
        SessionCache {
            planner,
            settings: Settings::new(database, role, startup),
            batch_read: None,
            batch_binds: 0,
            batch_writes: Vec::new(),
            prefix: None,
        }
    }

    /// A key builder starting from the session's part, hashed again only after a change.
    fn key(&mut self) -> KeyBuilder {
        let version = self.settings.version();
        match &self.prefix {
            Some((v, p)) if *v == version => KeyParts::builder_from(p),
            _ => {
                let p = SessionPrefix::new(self.settings.view());
                let b = KeyParts::builder_from(&p);
                self.prefix = Some((version, p));
                b
            }
        }
    }

    /// A simple-protocol Query.
    pub fn on_query(&mut self, st: &Statement<'_>) -> CachePlan {
        self.track(st);
        let writes = self.planner.writes(st.decision, st.topo, st.search_path, st.sql);
        if !writes.is_empty() {
            return CachePlan::Write(writes);
        }
        let shape = || super::shape_hash(st.sql);
        match self.planner.read(st.decision, st.topo, st.search_path, &self.settings, shape) {
            Some((facts, ttl)) => {
                let parts = self.key().statement(st.sql).protocol(Protocol::Simple).finish();
                CachePlan::Read(Box::new(ReadPlan { facts, parts, ttl }))
            }
            None => CachePlan::None,
        }
    }

    /// A Bind of a prepared statement; `declared` are the Parse's parameter type OIDs and
    /// `shape` its shape hash (for shape rules).
    pub fn on_bind(&mut self, st: &Statement<'_>, bind: &BindView<'_>, declared: &[u32], shape: u64) {
        self.batch_binds += 1;
        self.track(st);
        let writes = self.planner.writes(st.decision, st.topo, st.search_path, st.sql);
        if !writes.is_empty() {
            for w in writes {
                if !self.batch_writes.contains(&w) {
                    self.batch_writes.push(w);
                }
            }
            return;
        }
        if self.batch_binds > 1 {
            self.batch_read = None;
            return;
        }
        if let Some((facts, ttl)) = self.planner.read(st.decision, st.topo, st.search_path, &self.settings, || shape) {
            let formats: Vec<i16> = bind.param_formats().collect();
            let results: Vec<i16> = bind.result_formats().collect();
            let key = self
                .key()
                .statement(st.sql)
                .param_types(declared)
                .param_formats(&formats)
                .params(bind.params())
                .result_formats(&results);
            self.batch_read = Some((facts, ttl, key));
        }
    }

    /// A Bind whose statement the proxy has no analysis of (its Parse was not seen or not
    /// UTF-8): nothing in this batch may be cached, and whatever it wrote is unknown.
    pub fn on_unknown_bind(&mut self) {
        self.batch_binds += 1;
        self.batch_read = None;
        self.batch_writes = vec![WriteScope::Everything];
        self.settings.lose_track();
    }

    /// Whether prepared statements need their shape hash (only for shape rules).
    pub fn needs_shape(&self) -> bool {
        self.planner.cache().policy().has_shape_rules()
    }

    /// A Query the proxy could not analyse (not UTF-8).
    pub fn on_unknown_query(&mut self) -> CachePlan {
        self.settings.lose_track();
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
        self.settings.set_in_transaction(in_transaction);
    }

    pub fn on_parameter_status(&mut self, name: &str, value: &str) {
        self.settings.reported(name, value);
    }

    /// Settings the statement changes.
    fn track(&mut self, st: &Statement<'_>) {
        let statements = &st.decision.analysis.statements;
        let in_tx = self.settings.view().in_transaction || statements.len() > 1;
        for info in statements {
            match &info.kind {
                StatementKind::Set { local: true, .. } | StatementKind::Transaction { .. } => {}
                StatementKind::Set { name, value, .. } => self.settings.set(name, value, in_tx),
                StatementKind::Unparsed { .. } => self.track_utility(st.sql, true, in_tx),
                StatementKind::Utility => self.track_utility(st.sql, false, in_tx),
                _ => {}
            }
            if changes_settings(&info.functions) {
                self.settings.lose_track();
            }
        }
    }

    /// RESET / DISCARD ALL put settings back; DO, CALL, EXECUTE, an unparsable text or a RESET the
    /// proxy cannot read may change any setting.
    fn track_utility(&mut self, sql: &str, unparsed: bool, in_tx: bool) {
        let word = super::first_word(sql);
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        match reset_target(sql) {
            Some(ResetTarget::All) if is("RESET") || (!unparsed && is("DISCARD")) => self.settings.reset_all(),
            Some(ResetTarget::One(name)) => self.settings.reset(name, in_tx),
            _ if unparsed || is("RESET") || is("DO") || is("CALL") || is("EXECUTE") => self.settings.lose_track(),
            _ => {}
        }
    }
}
