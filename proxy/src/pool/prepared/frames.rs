//! Writers of the frames sent to the server: whole messages (tag, length, body) appended to the
//! output buffer, names rewritten, everything else copied from the client's body.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::SERVER_NAME_PREFIX;

/// Appends one message: `tag`, its length, then what `body` writes.
fn frame(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_u32(0);
    body(out);
    // Bodies are a client frame's (at most its declared i32 length) plus a short name.
    let len = (out.len() - at) as u32;
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

fn cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

/// `citus_proxy_<id>\0`, formatted in place (evicted ids have no `Prepared` at hand).
pub(super) fn server_name(out: &mut BytesMut, id: u64) {
    out.put_slice(SERVER_NAME_PREFIX);
    // Writing to a BytesMut cannot fail.
    let _ = write!(out, "{id}");
    out.put_u8(0);
}

/// The client's frame, unchanged.
pub(super) fn verbatim(out: &mut BytesMut, tag: u8, body: &[u8]) {
    frame(out, tag, |o| o.put_slice(body));
}

/// Parse of `name` with the content `rest` (query\0, types).
pub(super) fn parse(out: &mut BytesMut, name: &[u8], rest: &[u8]) {
    frame(out, b'P', |o| {
        cstr(o, name);
        o.put_slice(rest);
    });
}

/// Bind of `portal` to `statement`; `rest` is everything after the statement name.
pub(super) fn bind(out: &mut BytesMut, portal: &[u8], statement: &[u8], rest: &[u8]) {
    frame(out, b'B', |o| {
        cstr(o, portal);
        cstr(o, statement);
        o.put_slice(rest);
    });
}

/// Describe (`D`) or Close (`C`) of a statement or portal: `kind`, then the name.
pub(super) fn target(out: &mut BytesMut, tag: u8, kind: u8, name: &[u8]) {
    frame(out, tag, |o| {
        o.put_u8(kind);
        cstr(o, name);
    });
}

/// Close of the statement `citus_proxy_<id>`.
pub(super) fn close_id(out: &mut BytesMut, id: u64) {
    frame(out, b'C', |o| {
        o.put_u8(b'S');
        server_name(o, id);
    });
}
