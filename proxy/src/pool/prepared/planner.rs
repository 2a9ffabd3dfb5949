//! Per client message (Parse, Bind, Describe, Close) in transaction mode: the frames that must go
//! to the server connection the client holds now, and the fixups for the server's answers.

use std::sync::Arc;

use bytes::BytesMut;

use super::client::ClientStatements;
use super::fixups::{Answer, ResponseFixups};
use super::frames;
use super::ids::{Prepared, StatementIds};
use super::server::ServerStatements;
use super::{PreparedError, NOOP_NAME, SERVER_NAME_PREFIX};
use crate::wire::bind::BindView;
use crate::wire::describe::DescribeView;
use crate::wire::parse::ParseView;
use crate::wire::WireError;

/// Cheap to clone; one per session, sharing the proxy's `StatementIds`.
#[derive(Clone, Debug)]
pub struct Planner {
    ids: Arc<StatementIds>,
}

impl Planner {
    pub fn new(ids: Arc<StatementIds>) -> Planner {
        Planner { ids }
    }

    pub fn ids(&self) -> &Arc<StatementIds> {
        &self.ids
    }

    /// A new client's statement map.
    pub fn client(&self) -> ClientStatements {
        ClientStatements::new(&self.ids)
    }

    /// `P`. Unnamed: forwarded and remembered. Named S: the server already holds its content →
    /// a noop Close whose CloseComplete becomes ParseComplete; otherwise the rewritten Parse
    /// (after Closes of the ids it evicts, their answers hidden).
    pub fn on_parse(
        &self,
        client: &mut ClientStatements,
        server: &mut ServerStatements,
        body: &[u8],
        out: &mut BytesMut,
        fixups: &mut ResponseFixups,
    ) -> Result<(), PreparedError> {
        let view = ParseView::decode(body)?;
        if view.statement.is_empty() {
            let generation = client.record_unnamed(body);
            server.set_unnamed(client.key(), generation);
            frames::verbatim(out, b'P', body);
            fixups.expect_unnamed(Answer::Pass);
            return Ok(());
        }
        if server.capacity() == 0 {
            frames::verbatim(out, b'P', body);
            fixups.expect(Answer::Pass);
            return Ok(());
        }
        let rest = after(body, view.statement.len() + 1, "Parse")?;
        let prepared = self.ids.intern(rest);
        client.define(view.statement, Arc::clone(&prepared));
        if server.touch(prepared.id) {
            frames::target(out, b'C', b'S', NOOP_NAME);
            fixups.expect(Answer::ParseCompleteFromClose);
        } else {
            prepare(server, &prepared, out, fixups, Answer::Pass);
        }
        Ok(())
    }

    /// `B`: the statement prepared first where needed (its ParseComplete hidden), then the Bind
    /// naming the server's statement.
    pub fn on_bind(
        &self,
        client: &mut ClientStatements,
        server: &mut ServerStatements,
        body: &[u8],
        out: &mut BytesMut,
        fixups: &mut ResponseFixups,
    ) -> Result<(), PreparedError> {
        let view = BindView::decode(body)?;
        let rest = after(body, view.portal.len() + 1 + view.statement.len() + 1, "Bind")?;
        let name = self.statement_on_server(client, server, view.statement, out, fixups);
        frames::bind(out, view.portal, name.as_deref().unwrap_or(view.statement), rest);
        Ok(())
    }

    /// `D`: a statement's Describe like Bind; a portal's unchanged.
    pub fn on_describe(
        &self,
        client: &mut ClientStatements,
        server: &mut ServerStatements,
        body: &[u8],
        out: &mut BytesMut,
        fixups: &mut ResponseFixups,
    ) -> Result<(), PreparedError> {
        let view = DescribeView::decode(body)?;
        if view.kind != b'S' {
            frames::verbatim(out, b'D', body);
            return Ok(());
        }
        let name = self.statement_on_server(client, server, view.name, out, fixups);
        frames::target(out, b'D', b'S', name.as_deref().unwrap_or(view.name));
        Ok(())
    }

    /// `C`: a named statement is forgotten by the client only (other clients may share it on
    /// the server); the server gets a noop Close so it still answers CloseComplete in place.
    /// The unnamed statement and portals: forwarded.
    pub fn on_close(
        &self,
        client: &mut ClientStatements,
        server: &mut ServerStatements,
        body: &[u8],
        out: &mut BytesMut,
        fixups: &mut ResponseFixups,
    ) -> Result<(), PreparedError> {
        // Close has Describe's layout.
        let view = DescribeView::decode(body)?;
        match (view.kind, view.name.is_empty()) {
            (b'S', true) => {
                client.drop_unnamed();
                server.clear_unnamed();
                frames::verbatim(out, b'C', body);
                fixups.expect_unnamed(Answer::Pass);
                return Ok(());
            }
            (b'S', false) if server.capacity() > 0 => {
                client.forget(view.name);
                frames::target(out, b'C', b'S', NOOP_NAME);
            }
            _ => frames::verbatim(out, b'C', body),
        }
        fixups.expect(Answer::Pass);
        Ok(())
    }

    /// `Q` went to the server: PostgreSQL drops the unnamed statement at every simple query,
    /// the client's as well as the server's.
    pub fn on_query(&self, client: &mut ClientStatements, server: &mut ServerStatements) {
        client.drop_unnamed();
        server.clear_unnamed();
    }

    /// Makes the statement `name` (as the client calls it) exist on the server, writing what
    /// that takes; returns the name to use there, or None to keep the client's.
    fn statement_on_server(
        &self,
        client: &mut ClientStatements,
        server: &mut ServerStatements,
        name: &[u8],
        out: &mut BytesMut,
        fixups: &mut ResponseFixups,
    ) -> Option<bytes::Bytes> {
        if name.is_empty() {
            // Re-send the client's unnamed Parse where this server does not hold it. A client
            // without one must get PostgreSQL's "does not exist", not another client's leftover
            // statement: the server's is dropped first (hidden Close) where it may have one.
            match client.unnamed() {
                Some((generation, parse)) if !server.has_unnamed(client.key(), generation) => {
                    frames::verbatim(out, b'P', parse);
                    fixups.expect_unnamed(Answer::Hide);
                    server.set_unnamed(client.key(), generation);
                }
                Some(_) => {}
                None if server.may_hold_unnamed() => {
                    frames::target(out, b'C', b'S', b"");
                    fixups.expect_unnamed(Answer::Hide);
                    server.clear_unnamed();
                }
                None => {}
            }
            return None;
        }
        if server.capacity() == 0 {
            return None;
        }
        let Some(prepared) = client.get(name) else {
            // Unknown: the server answers 26000 naming it. A name in the proxy's own namespace
            // could address a statement the proxy prepared, so the server gets one it never has.
            return name.starts_with(SERVER_NAME_PREFIX).then(|| bytes::Bytes::from_static(NOOP_NAME));
        };
        if !server.touch(prepared.id) {
            prepare(server, prepared, out, fixups, Answer::Hide);
        }
        Some(prepared.server_name.clone())
    }
}

/// The Parse of `prepared` under its server name, after Closes of what the LRU evicts for it.
fn prepare(server: &mut ServerStatements, prepared: &Prepared, out: &mut BytesMut, fixups: &mut ResponseFixups, answer: Answer) {
    server.insert(prepared.id, |old| {
        frames::close_id(out, old);
        fixups.expect_close(old);
    });
    frames::parse(out, &prepared.server_name, &prepared.parse_rest);
    fixups.expect_prepare(answer, prepared.id);
}

/// `body` from `at` on (the decoder already checked the layout, so this only fails on a bug).
fn after<'a>(body: &'a [u8], at: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    body.get(at..).ok_or(WireError::Truncated(what))
}
