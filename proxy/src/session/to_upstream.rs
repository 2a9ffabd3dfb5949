//! Client → coordinator: walks the client's frames in place and forwards them as read, except
//! where the result cache answers. A cacheable Query is looked up before it is forwarded; an
//! extended-protocol batch that may be cacheable is held back (its frames stay in the buffer)
//! until its Sync, then looked up as a whole. A hit is never forwarded: the other direction
//! writes the stored answer in its turn.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, Bytes};
use citus_proxy_cache::WriteScope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::cache_step::{self, Outcome};
use super::frames::{next_header, FrameReader};
use super::relay::{End, BUSY_RECHECK, INSPECT_LIMIT, READ_CHUNK};
use super::state::{lock, Pending, State};
use crate::caching::{BatchShape, CachePlan};
use crate::context::Context;
use crate::error::SessionError;
use crate::hooks::StatementNote;
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::wire::bind::BindView;
use crate::wire::describe::DescribeView;
use crate::wire::execute::ExecuteView;
use crate::wire::frame::{is_frontend_tag, within_backend_limit, HEADER_LEN};
use crate::wire::parse::ParseView;
use crate::wire::query;

/// A batch held back for the cache is released (relayed uncached) past this many bytes.
const HOLD_LIMIT: usize = 256 * 1024;

/// Where the walk stopped for an await.
enum Step {
    /// Re-send the client's last unnamed Parse (answered from the cache, so the coordinator
    /// never saw it) before the frame at `at`, which uses it.
    ResendParse { at: usize },
    /// A cacheable statement: the frames `start..start + len` (a Query, or a held batch up to
    /// its Sync), its note and start time; `parse_len` is the length of the batch's leading
    /// unnamed Parse.
    /// `sync` when it is a batch (it ends with a Sync).
    Lookup { start: usize, len: usize, note: StatementNote, started: Instant, parse_len: Option<usize>, sync: bool },
}

fn protocol(msg: String) -> SessionError {
    SessionError::Protocol(msg)
}

/// Pushes `p` after attaching the hidden ParseCompletes its response will carry.
fn push(st: &mut State, mut p: Pending, hidden: &mut u8) {
    p.hidden_parse_completes = std::mem::take(hidden);
    st.push(p);
}

pub(super) async fn client_to_upstream(
    reader: FrameReader<ReadHalf>,
    w: &mut WriteHalf,
    state: &Mutex<State>,
    wake: &Notify,
    ctx: &Arc<Context>,
) -> Result<End, SessionError> {
    let FrameReader { inner: mut r, mut buf } = reader;
    let max = ctx.live().limits.max_message_size as usize + 1;
    let idle_timeout = ctx.live().limits.idle_timeout;
    let cache = ctx.cache.as_ref();
    // Bytes of a frame we forward without looking inside, still to come.
    let mut pass: usize = 0;
    // First message of the current extended-protocol batch (timing runs to its ReadyForQuery).
    let mut batch_start: Option<Instant> = None;
    // Syncs since the last Execute: if that Execute started a COPY FROM, PostgreSQL ignores them.
    let mut syncs_after_execute: usize = 0;
    // The batch in flight as the cache sees it; `hold` is where its held-back frames start in
    // `buf`, `scan_from` where the walk resumes after them.
    let mut batch = BatchShape::default();
    let mut batch_fresh = true;
    let mut hold: Option<usize> = None;
    let mut parse_len: Option<usize> = None;
    let mut scan_from: usize = 0;
    // A frame went by unanalysed (too large to inspect): what the batch writes is unknown.
    let mut batch_unknown = false;
    // ParseCompletes of re-sent Parses, owed to the next statement forwarded.
    let mut hidden: u8 = 0;
    // The batch so far holds only Close messages (drivers pipeline Close + Sync ahead of the
    // next statement); its Sync then changes nothing a cached answer could depend on.
    let mut closes_only = true;
    loop {
        let mut pos = std::mem::take(&mut scan_from);
        let mut need = 0;
        let mut terminate = false;
        let mut step = None;
        while !terminate {
            let Some((tag, total)) = next_header(&buf, &mut pos, &mut pass) else { break };
            let total = total.ok_or_else(|| protocol("invalid message length".into()))?;
            if !is_frontend_tag(tag) || tag == b'p' {
                return Err(protocol(format!("invalid frontend message type {tag}")));
            }
            if total > max {
                return Err(protocol(format!("message of {total} bytes exceeds limits.max_message_size ({})", max - 1)));
            }
            if !within_backend_limit(tag, total) {
                return Err(protocol(format!("invalid message length: {total} bytes for message type {:?}", tag as char)));
            }
            if !matches!(tag, b'S' | b'H' | b'd' | b'c' | b'f') {
                syncs_after_execute = 0;
            }
            if !matches!(tag, b'C' | b'S') {
                closes_only = false;
            }
            let watched = cache.is_some() && matches!(tag, b'D' | b'E');
            let inspect = (matches!(tag, b'Q' | b'P' | b'B' | b'C') || watched) && total <= INSPECT_LIMIT;
            if inspect {
                // `total` covers at least the header, so this is None exactly when the frame is
                // not all buffered yet.
                let Some(body) = buf.get(pos + HEADER_LEN..pos + total) else {
                    need = total;
                    break;
                };
                let mut st = lock(state);
                match tag {
                    b'Q' => {
                        let sql = query::sql(body)?;
                        let note = st.hooks.on_query(sql);
                        if matches!(note.cache, CachePlan::Read(_)) && st.may_serve_cached() {
                            step =
                                Some(Step::Lookup { start: pos, len: total, note, started: Instant::now(), parse_len: None, sync: false });
                            break;
                        }
                        push(&mut st, Pending::new(Instant::now(), note), &mut hidden);
                    }
                    b'P' => {
                        batch_start.get_or_insert_with(Instant::now);
                        let parse = ParseView::decode(body)?;
                        if cache.is_some() {
                            if parse.statement.is_empty() {
                                st.unsent_unnamed_parse = None;
                            }
                            if std::mem::take(&mut batch_fresh) {
                                hold = Some(pos);
                                parse_len = parse.statement.is_empty().then_some(total);
                            }
                            batch.parse(parse.statement);
                            if batch.is_spoiled() {
                                hold = None;
                            }
                        }
                        st.hooks.on_parse(&parse);
                    }
                    b'B' => {
                        batch_start.get_or_insert_with(Instant::now);
                        let bind = BindView::decode(body)?;
                        if cache.is_some() {
                            if bind.statement.is_empty() && !batch.parsed_unnamed() && st.unsent_unnamed_parse.is_some() {
                                hold = None;
                                step = Some(Step::ResendParse { at: pos });
                                break;
                            }
                            if std::mem::take(&mut batch_fresh) {
                                hold = Some(pos);
                            }
                            batch.bind(bind.portal, bind.statement);
                        }
                        st.hooks.on_bind(&bind);
                        if hold.is_some() && (batch.is_spoiled() || !st.hooks.cache_candidate()) {
                            hold = None;
                        }
                    }
                    b'D' => {
                        batch_start.get_or_insert_with(Instant::now);
                        let d = DescribeView::decode(body)?;
                        if d.kind == b'S' && d.name.is_empty() && !batch.parsed_unnamed() && st.unsent_unnamed_parse.is_some() {
                            hold = None;
                            step = Some(Step::ResendParse { at: pos });
                            break;
                        }
                        batch_fresh = false;
                        batch.describe(d.kind, d.name);
                        if batch.is_spoiled() {
                            hold = None;
                        }
                    }
                    b'C' => {
                        // Close: the hooks forget the statement (a later Bind of it must get the
                        // coordinator's error, not a cached answer). Same layout as Describe.
                        batch_start.get_or_insert_with(Instant::now);
                        let c = DescribeView::decode(body)?;
                        st.hooks.on_close(c.kind, c.name);
                        if cache.is_some() {
                            batch.other();
                            batch_fresh = false;
                            hold = None;
                        }
                    }
                    _ => {
                        batch_start.get_or_insert_with(Instant::now);
                        let e = ExecuteView::decode(body)?;
                        batch_fresh = false;
                        batch.execute(e.portal, e.max_rows);
                        if batch.is_spoiled() {
                            hold = None;
                        }
                    }
                }
                pos += total;
                continue;
            }
            match tag {
                b'Q' | b'F' => {
                    let mut note = StatementNote::default();
                    if cache.is_some() {
                        // Unanalysed (too large, or a FunctionCall): it may have written anything.
                        note.cache = CachePlan::Write(vec![WriteScope::Everything]);
                    }
                    push(&mut lock(state), Pending::new(Instant::now(), note), &mut hidden);
                }
                b'S' => {
                    let started = batch_start.take().unwrap_or_else(Instant::now);
                    let mut st = lock(state);
                    let cacheable = if hold.is_some() { batch.cacheable() } else { None };
                    let mut note = st.hooks.on_sync(cacheable);
                    if std::mem::take(&mut batch_unknown) {
                        note.cache = CachePlan::Write(vec![WriteScope::Everything]);
                    }
                    let held = hold.take();
                    let neutral = std::mem::replace(&mut closes_only, true);
                    batch = BatchShape::default();
                    batch_fresh = true;
                    let leading_parse = parse_len.take();
                    if let (Some(start), CachePlan::Read(_)) = (held, &note.cache) {
                        if st.may_serve_cached() {
                            let len = pos + total - start;
                            step = Some(Step::Lookup { start, len, note, started, parse_len: leading_parse, sync: true });
                            break;
                        }
                    }
                    let mut p = Pending::new(started, note);
                    p.neutral = neutral;
                    push(&mut st, p, &mut hidden);
                    syncs_after_execute += 1;
                }
                b'c' | b'f' => {
                    // CopyDone/CopyFail: Syncs sent during copy-in mode get no ReadyForQuery.
                    let mut st = lock(state);
                    if std::mem::take(&mut st.copy_in) {
                        if let Some(started) = st.discard_newest(syncs_after_execute) {
                            batch_start = Some(started);
                        }
                    }
                    syncs_after_execute = 0;
                }
                b'X' => {
                    // Forwarded with what came before it; nothing after it is.
                    hold = None;
                    terminate = true;
                    pos = (pos + total).min(buf.len());
                    continue;
                }
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => {
                    batch_start.get_or_insert_with(Instant::now);
                    if cache.is_some() {
                        batch.other();
                        batch_fresh = false;
                        hold = None;
                        if matches!(tag, b'P' | b'B') {
                            batch_unknown = true;
                        }
                        if tag == b'P' {
                            // A statement the hooks did not see replaced one they know.
                            lock(state).hooks.on_unseen_parse();
                        }
                    }
                }
                _ => {}
            }
            pass = total;
        }
        if let Some(step) = step {
            let head = match &step {
                Step::ResendParse { at } => *at,
                Step::Lookup { start, .. } => *start,
            };
            forward(w, &mut buf, head, ctx).await?;
            match step {
                Step::ResendParse { .. } => {
                    let parse = lock(state).unsent_unnamed_parse.take();
                    if let Some(parse) = parse {
                        w.write_all(&parse).await.map_err(SessionError::UpstreamIo)?;
                        hidden = hidden.saturating_add(1);
                    }
                }
                Step::Lookup { len, mut note, started, parse_len, sync, .. } => {
                    let plan = match std::mem::take(&mut note.cache) {
                        CachePlan::Read(plan) => Some(plan),
                        _ => None,
                    };
                    let outcome = match (cache, plan) {
                        (Some(c), Some(plan)) => cache_step::lookup(c, &plan).await,
                        _ => Outcome::Forward,
                    };
                    let mut p = Pending::new(started, note);
                    match outcome {
                        Outcome::Serve(bytes) => {
                            // `len` runs to the end of the batch's Sync as declared: a Sync with
                            // a body that has not all arrived reaches past what is buffered.
                            let served = buf.get(..len).ok_or_else(|| protocol("invalid message length".into()))?;
                            let mut st = lock(state);
                            if let Some(n) = parse_len {
                                let parse = served.get(..n).ok_or_else(|| protocol("invalid message length".into()))?;
                                st.unsent_unnamed_parse = Some(Bytes::copy_from_slice(parse));
                            }
                            p.served = Some(bytes);
                            p.neutral = true;
                            st.push(p);
                            drop(st);
                            buf.advance(len);
                            wake.notify_one();
                        }
                        Outcome::Fill(filling) => {
                            p.fill = Some(filling);
                            push(&mut lock(state), p, &mut hidden);
                            forward(w, &mut buf, len, ctx).await?;
                        }
                        Outcome::Forward => {
                            push(&mut lock(state), p, &mut hidden);
                            forward(w, &mut buf, len, ctx).await?;
                        }
                    }
                    if sync {
                        syncs_after_execute += 1;
                    }
                }
            }
            // Walk what is already buffered before reading more.
            continue;
        }
        if hold.is_some_and(|h| pos - h > HOLD_LIMIT) {
            hold = None;
            batch.other();
        }
        let upto = hold.unwrap_or(pos);
        forward(w, &mut buf, upto, ctx).await?;
        if hold.is_some() {
            hold = Some(0);
            scan_from = pos - upto;
        }
        if terminate {
            return Ok(End::ClientTerminated);
        }
        buf.reserve(need.saturating_sub(buf.len() - scan_from).max(READ_CHUNK));
        let n = if idle_timeout.is_zero() {
            r.read_buf(&mut buf).await
        } else {
            // The session usually becomes idle while this read waits (its last ReadyForQuery
            // arrives after the client's last message), so idleness is re-checked, not only
            // decided when the read starts. read_buf is cancel-safe.
            let mut idle_from = lock(state).is_idle().then(Instant::now);
            loop {
                let wait = match idle_from {
                    Some(t) => idle_timeout.saturating_sub(t.elapsed()),
                    None => idle_timeout.min(BUSY_RECHECK),
                };
                match tokio::time::timeout(wait, r.read_buf(&mut buf)).await {
                    Ok(res) => break res,
                    Err(_) if !lock(state).is_idle() => idle_from = None,
                    Err(_) => match idle_from {
                        Some(t) if t.elapsed() >= idle_timeout => return Err(SessionError::IdleTimeout),
                        Some(_) => {}
                        None => idle_from = Some(Instant::now()),
                    },
                }
            }
        }
        .map_err(SessionError::ClientIo)?;
        if n == 0 {
            return Ok(End::ClientGone);
        }
    }
}

/// Writes the first `n` buffered bytes to the coordinator and drops them from the buffer.
async fn forward(w: &mut WriteHalf, buf: &mut bytes::BytesMut, n: usize, ctx: &Context) -> Result<(), SessionError> {
    if n > 0 {
        // Only a held batch whose Sync declares a body not all buffered yet reaches past the end.
        let bytes = buf.get(..n).ok_or_else(|| protocol("invalid message length".into()))?;
        w.write_all(bytes).await.map_err(SessionError::UpstreamIo)?;
        ctx.metrics.bytes_to_upstream.increment(n as u64);
        buf.advance(n);
    }
    Ok(())
}
