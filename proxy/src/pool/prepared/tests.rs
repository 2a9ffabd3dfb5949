//! The planner end to end on frames: what goes to the server, and what the fixups do with the
//! server's answers.

// Tests index their own frames.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::*;
use crate::wire::WireError;

fn parse_body(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    b.extend_from_slice(sql.as_bytes());
    b.push(0);
    b.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    b
}

fn bind_body(portal: &str, statement: &str, params: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(portal.as_bytes());
    b.push(0);
    b.extend_from_slice(statement.as_bytes());
    b.push(0);
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&(params.len() as u16).to_be_bytes());
    for p in params {
        b.extend_from_slice(&(p.len() as i32).to_be_bytes());
        b.extend_from_slice(p.as_bytes());
    }
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b
}

fn target_body(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    b
}

/// The frames in `out` as readable strings: `P citus_proxy_1 "select 1"`, `B p=? s=…`, …
fn frames(out: &BytesMut) -> Vec<String> {
    let mut v = Vec::new();
    let mut buf = &out[..];
    while !buf.is_empty() {
        let tag = buf[0];
        let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
        let body = &buf[5..1 + len];
        let cstrs: Vec<String> = body.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        v.push(match tag {
            b'P' => format!("P {} {}", cstrs[0], cstrs[1]),
            b'B' => format!("B {} {}", cstrs[0], cstrs[1]),
            b'D' | b'C' => format!("{} {} {}", tag as char, body[0] as char, String::from_utf8_lossy(&body[1..body.len() - 1])),
            _ => format!("{}", tag as char),
        });
        buf = &buf[1 + len..];
    }
    v
}

struct Rig {
    planner: Planner,
    out: BytesMut,
    fixups: ResponseFixups,
}

impl Rig {
    fn new() -> Rig {
        Rig { planner: Planner::new(Arc::new(StatementIds::default())), out: BytesMut::new(), fixups: ResponseFixups::new() }
    }
    fn take(&mut self) -> Vec<String> {
        let f = frames(&self.out);
        self.out.clear();
        f
    }
    fn parse(&mut self, c: &mut ClientStatements, s: &mut ServerStatements, name: &str, sql: &str) -> Vec<String> {
        self.planner.on_parse(c, s, &parse_body(name, sql, &[]), &mut self.out, &mut self.fixups).unwrap();
        self.take()
    }
    fn bind(&mut self, c: &mut ClientStatements, s: &mut ServerStatements, name: &str) -> Vec<String> {
        self.planner.on_bind(c, s, &bind_body("", name, &["1"]), &mut self.out, &mut self.fixups).unwrap();
        self.take()
    }
    fn describe(&mut self, c: &mut ClientStatements, s: &mut ServerStatements, kind: u8, name: &str) -> Vec<String> {
        self.planner.on_describe(c, s, &target_body(kind, name), &mut self.out, &mut self.fixups).unwrap();
        self.take()
    }
    fn close(&mut self, c: &mut ClientStatements, s: &mut ServerStatements, kind: u8, name: &str) -> Vec<String> {
        self.planner.on_close(c, s, &target_body(kind, name), &mut self.out, &mut self.fixups).unwrap();
        self.take()
    }
    /// The server answers `n` ParseComplete/CloseComplete frames (tags given): what the client gets.
    fn answer(&mut self, tags: &[u8]) -> String {
        let mut seen = String::new();
        for &t in tags {
            let mut frame = [t, 0, 0, 0, 4];
            if self.fixups.on_complete().apply(&mut frame) {
                seen.push(frame[0] as char);
            }
        }
        seen
    }
}

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn parse_rewrites_and_bind_follows() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    assert_eq!(r.parse(&mut c, &mut s, "s1", "select $1"), v(&["P citus_proxy_1 select $1"]));
    assert_eq!(r.bind(&mut c, &mut s, "s1"), v(&["B  citus_proxy_1"]));
    assert_eq!(r.describe(&mut c, &mut s, b'S', "s1"), v(&["D S citus_proxy_1"]));
    assert_eq!(r.describe(&mut c, &mut s, b'P', "s1"), v(&["D P s1"]));
    r.fixups.expect_ready();
    assert_eq!(r.answer(b"1"), "1");
    assert_eq!(r.fixups.on_ready(&mut s), 0);
    assert!(r.fixups.is_empty());
}

#[test]
fn bind_keeps_the_rest_of_the_message() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    r.parse(&mut c, &mut s, "s1", "select $1");
    let body = bind_body("portal", "s1", &["42", "x"]);
    r.planner.on_bind(&mut c, &mut s, &body, &mut r.out, &mut r.fixups).unwrap();
    let expected = bind_body("portal", "citus_proxy_1", &["42", "x"]);
    let mut frame = BytesMut::new();
    frame.put_u8(b'B');
    frame.put_u32(expected.len() as u32 + 4);
    frame.put_slice(&expected);
    assert_eq!(r.out, frame);
}

#[test]
fn same_text_is_shared_across_clients_and_connections() {
    let mut r = Rig::new();
    let mut a = r.planner.client();
    let mut b = r.planner.client();
    let mut s1 = ServerStatements::new(10);
    let mut s2 = ServerStatements::new(10);
    assert_eq!(r.parse(&mut a, &mut s1, "a_stmt", "select 1"), v(&["P citus_proxy_1 select 1"]));
    // Another client, other name, same text, same connection: the server has it; a noop Close
    // answers in place of the Parse.
    assert_eq!(r.parse(&mut b, &mut s1, "other", "select 1"), v(&["C S citus_proxy_noop"]));
    assert_eq!(r.answer(b"13"), "11");
    // Different parameter types are a different statement.
    r.planner.on_parse(&mut b, &mut s1, &parse_body("typed", "select 1", &[23]), &mut r.out, &mut r.fixups).unwrap();
    assert_eq!(r.take(), v(&["P citus_proxy_2 select 1"]));
    // On a connection that never saw it, the Bind brings its Parse along, whose answer is hidden.
    assert_eq!(r.bind(&mut b, &mut s2, "other"), v(&["P citus_proxy_1 select 1", "B  citus_proxy_1"]));
    assert_eq!(r.answer(b"11"), "1", "the typed Parse's answer passes, the injected one is hidden");
    assert_eq!(r.bind(&mut a, &mut s2, "a_stmt"), v(&["B  citus_proxy_1"]));
    assert_eq!(r.planner.ids().len(), 2);
}

#[test]
fn describe_of_a_statement_prepares_it_first() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s1 = ServerStatements::new(10);
    let mut s2 = ServerStatements::new(10);
    r.parse(&mut c, &mut s1, "s", "select 2");
    assert_eq!(r.describe(&mut c, &mut s2, b'S', "s"), v(&["P citus_proxy_1 select 2", "D S citus_proxy_1"]));
    assert_eq!(r.answer(b"11"), "1", "the client's Parse answer passes, the injected one is hidden");
}

#[test]
fn lru_evicts_least_recently_used_with_a_hidden_close_first() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(2);
    r.parse(&mut c, &mut s, "a", "select 'a'");
    r.parse(&mut c, &mut s, "b", "select 'b'");
    // Using a makes b the least recently used.
    assert_eq!(r.bind(&mut c, &mut s, "a"), v(&["B  citus_proxy_1"]));
    assert_eq!(r.parse(&mut c, &mut s, "c", "select 'c'"), v(&["C S citus_proxy_2", "P citus_proxy_3 select 'c'"]));
    assert_eq!(s.ids().collect::<Vec<_>>(), vec![1, 3]);
    // b comes back: a is now the oldest.
    assert_eq!(r.bind(&mut c, &mut s, "b"), v(&["C S citus_proxy_1", "P citus_proxy_2 select 'b'", "B  citus_proxy_2"]));
    assert_eq!(s.ids().collect::<Vec<_>>(), vec![3, 2]);
    // Answers: a, b, c parse pass; Close 2 hidden; Parse 3 passes; Close 1 and Parse 2 hidden.
    assert_eq!(r.answer(b"113133"), "111");
    assert!(r.fixups.is_empty());
}

#[test]
fn close_forgets_client_side_only_and_answers_in_place() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    r.parse(&mut c, &mut s, "s", "select 3");
    assert_eq!(r.close(&mut c, &mut s, b'S', "s"), v(&["C S citus_proxy_noop"]));
    assert!(c.get(b"s").is_none());
    assert!(s.contains(1), "other clients may still use it on this connection");
    // Closing an unknown name is fine in PostgreSQL too.
    assert_eq!(r.close(&mut c, &mut s, b'S', "never"), v(&["C S citus_proxy_noop"]));
    assert_eq!(r.close(&mut c, &mut s, b'P', "portal"), v(&["C P portal"]));
    assert_eq!(r.answer(b"1333"), "1333");
    // Bind after Close: unknown, sent as is so the server reports it.
    assert_eq!(r.bind(&mut c, &mut s, "s"), v(&["B  s"]));
}

#[test]
fn unknown_names_go_to_the_server_which_reports_them() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    assert_eq!(r.bind(&mut c, &mut s, "nope"), v(&["B  nope"]));
    assert_eq!(r.describe(&mut c, &mut s, b'S', "nope"), v(&["D S nope"]));
    // The proxy's own namespace is never addressed by a client's unknown name.
    r.parse(&mut c, &mut s, "mine", "select 4");
    assert_eq!(r.bind(&mut c, &mut s, "citus_proxy_1"), v(&["B  citus_proxy_noop"]));
    assert_eq!(r.describe(&mut c, &mut s, b'S', "citus_proxy_1"), v(&["D S citus_proxy_noop"]));
    // A client may name its own statement so: it is just a name.
    r.parse(&mut c, &mut s, "citus_proxy_1", "select 5");
    assert_eq!(r.bind(&mut c, &mut s, "citus_proxy_1"), v(&["B  citus_proxy_2"]));
}

#[test]
fn redefining_a_name_replaces_it() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    r.parse(&mut c, &mut s, "s", "select 1");
    r.parse(&mut c, &mut s, "s", "select 2");
    assert_eq!(r.bind(&mut c, &mut s, "s"), v(&["B  citus_proxy_2"]));
    assert_eq!(c.len(), 1);
}

#[test]
fn deallocate_and_discard() {
    let ids = StatementIds::default();
    let mut c = ClientStatements::new(&ids);
    c.define(b"s1", ids.intern(b"select 1\0\0\0"));
    c.define(b"S2", ids.intern(b"select 2\0\0\0"));
    c.define(b"s3", ids.intern(b"select 3\0\0\0"));
    assert!(c.deallocate("S1"), "unquoted names fold to lower case");
    assert!(!c.deallocate("S2"));
    assert!(c.deallocate("\"S2\""));
    c.deallocate_all();
    assert!(c.is_empty());

    let mut s = ServerStatements::new(10);
    s.insert(1, |_| {});
    s.on_command_complete(b"DEALLOCATE\0");
    assert_eq!(s.len(), 1);
    s.on_command_complete(b"DISCARD ALL\0");
    assert!(s.is_empty());
    s.insert(1, |_| {});
    s.on_command_complete(b"DEALLOCATE ALL");
    assert!(s.is_empty());
}

#[test]
fn an_error_skipped_batch_undoes_what_never_ran() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(2);
    r.parse(&mut c, &mut s, "a", "select 'a'");
    r.parse(&mut c, &mut s, "b", "select 'b'");
    r.fixups.expect_ready();
    assert_eq!(r.answer(b"11"), "11");
    assert_eq!(r.fixups.on_ready(&mut s), 0);

    // Next batch: Parse c evicts a (Close a, Parse c), then Bind a evicts b and re-prepares a.
    r.parse(&mut c, &mut s, "c", "select 'c'");
    r.bind(&mut c, &mut s, "a");
    r.fixups.expect_ready();
    assert_eq!(s.ids().collect::<Vec<_>>(), vec![3, 1]);
    // The Close of a ran, then Parse c failed: the rest was skipped.
    assert_eq!(r.answer(b"3"), "");
    assert_eq!(r.fixups.on_ready(&mut s), 3, "Parse c, Close b, Parse a never answered");
    // a was closed, c never made, b's Close never ran: the server holds b only.
    assert_eq!(s.ids().collect::<Vec<_>>(), vec![2]);
    assert!(r.fixups.is_empty());
    // So a and c are prepared again next time, and b is not.
    assert_eq!(r.bind(&mut c, &mut s, "b"), v(&["B  citus_proxy_2"]));
    assert_eq!(r.bind(&mut c, &mut s, "c"), v(&["P citus_proxy_3 select 'c'", "B  citus_proxy_3"]));
}

#[test]
fn a_skipped_close_then_skipped_reparse_leaves_the_statement_held() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(1);
    r.parse(&mut c, &mut s, "a", "select 'a'");
    r.fixups.expect_ready();
    r.answer(b"1");
    r.fixups.on_ready(&mut s);
    // One batch, failing at once: Parse b (Close a, Parse b), Bind a (Close b, Parse a).
    r.parse(&mut c, &mut s, "b", "select 'b'");
    r.bind(&mut c, &mut s, "a");
    r.fixups.expect_ready();
    assert_eq!(r.fixups.on_ready(&mut s), 4);
    assert_eq!(s.ids().collect::<Vec<_>>(), vec![1], "the server still has a and never had b");
    // Over capacity after a restore, the next insert closes what it must.
    s.restore(7);
    assert_eq!(s.len(), 2);
    assert_eq!(r.parse(&mut c, &mut s, "b", "select 'b'"), v(&["C S citus_proxy_7", "C S citus_proxy_1", "P citus_proxy_2 select 'b'"]));
}

#[test]
fn pipelined_batches_pop_one_sync_at_a_time() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    // Batch 1: Parse a, Sync. Batch 2: Parse b, Bind b, Sync. Batch 3: Close a, Sync.
    r.parse(&mut c, &mut s, "a", "select 'a'");
    r.fixups.expect_ready();
    r.parse(&mut c, &mut s, "b", "select 'b'");
    r.bind(&mut c, &mut s, "b");
    r.fixups.expect_ready();
    r.close(&mut c, &mut s, b'S', "a");
    r.fixups.expect_ready();
    assert_eq!(r.fixups.pending_ready(), 3);
    assert_eq!(r.answer(b"1"), "1");
    assert_eq!(r.fixups.on_ready(&mut s), 0);
    // Batch 2 fails at its Parse.
    assert_eq!(r.fixups.on_ready(&mut s), 1);
    assert!(!s.contains(2));
    assert!(s.contains(1));
    assert_eq!(r.answer(b"3"), "3");
    assert_eq!(r.fixups.on_ready(&mut s), 0);
    assert!(r.fixups.is_empty());
    // A ReadyForQuery nobody announced pops nothing.
    assert_eq!(r.fixups.on_ready(&mut s), 0);
    // An answer nobody expected passes.
    assert_eq!(r.answer(b"1"), "1");
}

#[test]
fn unnamed_statement_is_passed_and_resent_where_missing() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut other = r.planner.client();
    let mut s1 = ServerStatements::new(10);
    let mut s2 = ServerStatements::new(10);
    assert_eq!(r.parse(&mut c, &mut s1, "", "select 'u'"), v(&["P  select 'u'"]));
    assert_eq!(r.bind(&mut c, &mut s1, ""), v(&["B  "]));
    // Next transaction on another connection: re-sent, answer hidden.
    assert_eq!(r.bind(&mut c, &mut s2, ""), v(&["P  select 'u'", "B  "]));
    assert_eq!(r.describe(&mut c, &mut s2, b'S', ""), v(&["D S "]));
    assert_eq!(r.answer(b"11"), "1");
    // Another client's unnamed Parse on s1 replaces the server's unnamed statement.
    r.parse(&mut other, &mut s1, "", "select 'other'");
    assert_eq!(r.bind(&mut c, &mut s1, ""), v(&["P  select 'u'", "B  "]));
    // A new unnamed Parse by the client is what gets re-sent, reusing its buffer.
    r.parse(&mut c, &mut s1, "", "select 'v'");
    assert_eq!(r.bind(&mut c, &mut s2, ""), v(&["P  select 'v'", "B  "]));
    // A simple query drops the unnamed statement, for the client as in PostgreSQL.
    // Where another server still holds the client's old one, it is dropped first (hidden), so
    // the server reports it missing as PostgreSQL would.
    r.planner.on_query(&mut c, &mut s2);
    assert_eq!(r.bind(&mut c, &mut s2, ""), v(&["B  "]));
    assert_eq!(r.bind(&mut c, &mut s1, ""), v(&["C S ", "B  "]));
    assert_eq!(r.bind(&mut c, &mut s1, ""), v(&["B  "]));
    // A client that never had one never reaches another client's.
    let mut fresh = r.planner.client();
    r.parse(&mut other, &mut s1, "", "select 'other'");
    assert_eq!(r.describe(&mut fresh, &mut s1, b'S', ""), v(&["C S ", "D S "]));
    let mut new_server = ServerStatements::new(10);
    assert_eq!(r.bind(&mut fresh, &mut new_server, ""), v(&["B  "]));
}

#[test]
fn unnamed_close_and_skipped_unnamed_parse() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    r.parse(&mut c, &mut s, "", "select 'u'");
    r.fixups.expect_ready();
    // Skipped by an earlier error: the server may not hold it, so it is re-sent next time.
    assert_eq!(r.fixups.on_ready(&mut s), 1);
    assert_eq!(r.bind(&mut c, &mut s, ""), v(&["P  select 'u'", "B  "]));
    assert_eq!(r.close(&mut c, &mut s, b'S', ""), v(&["C S "]));
    assert_eq!(r.bind(&mut c, &mut s, ""), v(&["B  "]));
    // A skipped Close of it leaves the server's unknown: dropped again before a Bind.
    r.fixups.clear();
    r.close(&mut c, &mut s, b'S', "");
    r.fixups.expect_ready();
    assert_eq!(r.fixups.on_ready(&mut s), 1);
    assert_eq!(r.bind(&mut c, &mut s, ""), v(&["C S ", "B  "]));
}

#[test]
fn capacity_zero_passes_named_statements_through() {
    let mut r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(0);
    assert_eq!(r.parse(&mut c, &mut s, "s", "select 1"), v(&["P s select 1"]));
    assert_eq!(r.bind(&mut c, &mut s, "s"), v(&["B  s"]));
    assert_eq!(r.describe(&mut c, &mut s, b'S', "s"), v(&["D S s"]));
    assert_eq!(r.close(&mut c, &mut s, b'S', "s"), v(&["C S s"]));
    assert_eq!(r.answer(b"13"), "13");
}

#[test]
fn malformed_bodies_are_wire_errors() {
    let r = Rig::new();
    let mut c = r.planner.client();
    let mut s = ServerStatements::new(10);
    let mut out = BytesMut::new();
    let mut fx = ResponseFixups::new();
    let p = &r.planner;
    assert_eq!(p.on_parse(&mut c, &mut s, b"s1\0select", &mut out, &mut fx), Err(PreparedError::Wire(WireError::Unterminated("Parse"))));
    assert_eq!(
        p.on_parse(&mut c, &mut s, b"s1\0select 1\0\0\x02\0\0", &mut out, &mut fx),
        Err(PreparedError::Wire(WireError::Truncated("Parse")))
    );
    assert!(p.on_bind(&mut c, &mut s, b"\0s1\0\0\0\0\x01\0\0\0\x09ab", &mut out, &mut fx).is_err());
    assert!(p.on_bind(&mut c, &mut s, b"", &mut out, &mut fx).is_err());
    assert!(p.on_describe(&mut c, &mut s, b"S", &mut out, &mut fx).is_err());
    assert!(p.on_close(&mut c, &mut s, b"Sx\0extra", &mut out, &mut fx).is_err());
    assert!(out.is_empty(), "nothing is written for a malformed message");
    assert!(fx.is_empty());
    assert!(s.is_empty());
}

#[test]
fn contents_no_client_holds_are_swept() {
    let ids = StatementIds::new(2);
    let mut c = ClientStatements::new(&ids);
    c.define(b"kept", ids.intern(b"select 1\0\0\0"));
    drop(ids.intern(b"select 2\0\0\0"));
    assert_eq!(ids.len(), 2);
    // The third content finds the map at its threshold: the unheld one goes.
    let third = ids.intern(b"select 3\0\0\0");
    assert_eq!(ids.len(), 2);
    assert_eq!(third.id, 3, "ids are never reused");
    assert_eq!(ids.intern(b"select 1\0\0\0").id, 1);
}

#[test]
fn records_can_live_in_shared_pool_state() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<StatementIds>();
    send_sync::<Planner>();
    send_sync::<ClientStatements>();
    send_sync::<ServerStatements>();
    send_sync::<ResponseFixups>();
}
