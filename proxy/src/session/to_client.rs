//! Coordinator → client: walks the coordinator's frames in place and relays them as read. Around
//! that it does the cache's work in statement order: answers taken from the cache are written
//! when their turn at the front of the queue comes, a filling statement's response is collected
//! as it passes, and a write's invalidation is published before its ReadyForQuery is relayed.

use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use citus_proxy_cache::{Entry, WriteScope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::frames::{next_header, FrameReader};
use super::relay::{End, INSPECT_LIMIT, READ_CHUNK};
use super::state::{lock, Filling, Pending, State};
use crate::context::Context;
use crate::error::SessionError;
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::wire::error_response::is_fatal;
use crate::wire::frame::HEADER_LEN;
use crate::wire::ready::{self, TxStatus};

/// Cached answers up to this size are written in one piece with their ReadyForQuery.
const ASSEMBLE_LIMIT: usize = 64 * 1024;

pub(super) async fn upstream_to_client(
    reader: FrameReader<ReadHalf>,
    w: &mut WriteHalf,
    state: &Mutex<State>,
    wake: &Notify,
    ctx: &Arc<Context>,
) -> Result<End, SessionError> {
    let addr = ctx.connector.addr();
    let metrics = &ctx.metrics;
    let caching = ctx.cache.is_some();
    let FrameReader { inner: mut r, mut buf } = reader;
    let mut pass: usize = 0;
    let mut last_was_fatal = false;
    // True until the first frame answering the oldest outstanding statement (where a hook's
    // notice goes).
    let mut at_statement_start = true;
    let mut out = BytesMut::new();
    loop {
        if caching && serve_front(w, state, ctx, &mut out).await? {
            return Ok(End::Drained);
        }
        let mut pos = 0;
        let mut out_from = 0;
        // Start of the bytes answering the front statement, for a fill collecting them.
        let mut collect_from = 0;
        let mut need = 0;
        let mut drained = false;
        while let Some((tag, total)) = next_header(&buf, &mut pos, &mut pass) {
            let total = total.ok_or_else(|| SessionError::UpstreamLost(format!("{addr} (invalid message length)")))?;
            let mut hide = false;
            if at_statement_start || (caching && tag == b'1') {
                let (h, notice) = front_frame(state, tag, &mut at_statement_start);
                hide = h;
                if let Some(n) = notice {
                    w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
                    w.write_all(&n).await.map_err(SessionError::ClientIo)?;
                    out_from = pos;
                }
            }
            if tag == b'G' {
                lock(state).copy_in = true;
            }
            let status_report = caching && tag == b'S';
            if (matches!(tag, b'Z' | b'E') || status_report || hide) && total <= INSPECT_LIMIT {
                // `total` covers at least the header, so this is None exactly when the frame is
                // not all buffered yet.
                let Some(body) = buf.get(pos + HEADER_LEN..pos + total) else {
                    need = total;
                    break;
                };
                match tag {
                    b'Z' => {
                        let status = TxStatus::from_body(body)
                            .ok_or_else(|| SessionError::UpstreamLost(format!("{addr} (malformed ReadyForQuery)")))?;
                        let (popped, stale) = {
                            let mut st = lock(state);
                            let mut p = st.pop(status);
                            let stale = p.as_mut().map(|p| settle_writes(&mut st, p, status)).unwrap_or_default();
                            (p, stale)
                        };
                        let mut next = None;
                        if let Some(mut p) = popped {
                            if let Some(mut f) = p.fill.take() {
                                f.collector.push(span(&buf, collect_from, pos, addr)?);
                                complete_fill(f);
                            }
                            if !stale.is_empty() {
                                // Relay what came before, then publish the invalidation: the
                                // write's ReadyForQuery reaches the client only after it.
                                w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
                                out_from = pos;
                                invalidate(state, ctx, &stale).await;
                            }
                            let mut done = finished(state, ctx, &p, status);
                            if let Some(wait) = done.wait.take() {
                                // As for an invalidation: the statement's ReadyForQuery reaches
                                // the client only once the metadata it changed is reloaded.
                                w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
                                out_from = pos;
                                wait.await;
                            }
                            next = Some(done);
                        }
                        at_statement_start = true;
                        pos += total;
                        collect_from = pos;
                        let Next { idle_end, served_next, .. } = next.unwrap_or_else(|| {
                            let st = lock(state);
                            Next { idle_end: st.draining && st.is_idle(), served_next: st.front_is_served(), wait: None }
                        });
                        if idle_end {
                            drained = true;
                            break;
                        }
                        if served_next {
                            w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
                            out_from = pos;
                            if serve_front(w, state, ctx, &mut out).await? {
                                drained = true;
                                break;
                            }
                        }
                    }
                    b'E' => {
                        let mut st = lock(state);
                        st.hooks.on_backend_error(body);
                        if let Some(code) = crate::wire::error_response::sqlstate(body) {
                            metrics.backend_error(code);
                        }
                        last_was_fatal = is_fatal(body);
                        pos += total;
                    }
                    b'S' => {
                        if let Some((name, value)) = crate::wire::parameter_status::decode(body) {
                            lock(state).hooks.on_parameter_status(name, value);
                        }
                        pos += total;
                    }
                    _ => {
                        // A ParseComplete answering a Parse the proxy re-sent: not the client's.
                        if let Some(p) = lock(state).pending.front_mut() {
                            p.hidden_parse_completes = p.hidden_parse_completes.saturating_sub(1);
                        }
                        w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
                        if let Some(f) = lock(state).pending.front_mut().and_then(|p| p.fill.as_mut()) {
                            f.collector.push(span(&buf, collect_from, pos, addr)?);
                        }
                        pos += total;
                        out_from = pos;
                        collect_from = pos;
                    }
                }
                continue;
            }
            pass = total;
        }
        if pos > out_from {
            w.write_all(span(&buf, out_from, pos, addr)?).await.map_err(SessionError::ClientIo)?;
        }
        if caching && pos > collect_from {
            if let Some(f) = lock(state).pending.front_mut().and_then(|p| p.fill.as_mut()) {
                f.collector.push(span(&buf, collect_from, pos, addr)?);
            }
        }
        metrics.bytes_to_client.increment(pos as u64);
        buf.advance(pos);
        if drained {
            return Ok(End::Drained);
        }
        buf.reserve(need.saturating_sub(buf.len()).max(READ_CHUNK));
        let n = if caching {
            tokio::select! {
                n = r.read_buf(&mut buf) => n.map_err(SessionError::UpstreamIo)?,
                // A cached answer was queued: write it if its turn has come.
                _ = wake.notified() => continue,
            }
        } else {
            r.read_buf(&mut buf).await.map_err(SessionError::UpstreamIo)?
        };
        if n == 0 {
            return if last_was_fatal { Ok(End::UpstreamClosed) } else { Err(SessionError::UpstreamLost(addr.to_string())) };
        }
    }
}

/// `buf[from..to]`. The walk keeps `from <= to <= buf.len()`; a miscounted frame length ends
/// the session instead of panicking.
#[inline]
fn span<'b>(buf: &'b [u8], from: usize, to: usize, addr: &str) -> Result<&'b [u8], SessionError> {
    buf.get(from..to).ok_or_else(|| SessionError::UpstreamLost(format!("{addr} (invalid message length)")))
}

/// For a frame answering the front statement: whether it is a ParseComplete to hide, and the
/// notice to write before it when it is the statement's first frame.
fn front_frame(state: &Mutex<State>, tag: u8, at_statement_start: &mut bool) -> (bool, Option<bytes::Bytes>) {
    let mut st = lock(state);
    let Some(p) = st.pending.front_mut().filter(|p| p.served.is_none()) else { return (false, None) };
    let hide = tag == b'1' && p.hidden_parse_completes > 0;
    let notice = if *at_statement_start {
        *at_statement_start = false;
        p.notice.take()
    } else {
        None
    };
    (hide, notice)
}

/// What a statement that just ended makes stale now: its own writes and, when this ends the
/// transaction block, those of the whole block. Inside a block they wait for its end.
fn settle_writes(st: &mut State, p: &mut Pending, status: TxStatus) -> Vec<WriteScope> {
    let writes = std::mem::take(&mut p.writes);
    if status == TxStatus::Idle {
        let mut all = st.tx_writes.take();
        for w in writes {
            if !all.contains(&w) {
                all.push(w);
            }
        }
        all
    } else {
        for w in writes {
            st.tx_writes.record(w);
        }
        Vec::new()
    }
}

async fn invalidate(state: &Mutex<State>, ctx: &Context, scopes: &[WriteScope]) {
    let Some(cache) = &ctx.cache else { return };
    lock(state).invalidating = true;
    for scope in scopes {
        cache.invalidate(scope).await;
    }
    lock(state).invalidating = false;
}

/// Stores a filled response (off the relay path: the Redis copy need not delay the client).
pub(in crate::session) fn complete_fill(f: Filling) {
    let Filling { guard, collector, ttl } = f;
    match collector.finish() {
        Ok(bytes) => {
            tokio::spawn(async move {
                let _ = guard.complete(Entry::new(bytes, ttl)).await;
            });
        }
        Err(reason) => guard.abandon(reason),
    }
}

/// What the session does after a statement finished.
struct Next {
    /// The proxy is draining and the session just became idle: end it.
    idle_end: bool,
    /// The new front statement is answered from the cache.
    served_next: bool,
    /// To finish before the ReadyForQuery is relayed (`StatementHooks::before_ready`).
    wait: Option<crate::hooks::ReadyWait>,
}

/// Metrics and hooks of a statement that got its ReadyForQuery, and what comes next (read under
/// the same lock).
fn finished(state: &Mutex<State>, ctx: &Context, p: &Pending, status: TxStatus) -> Next {
    let elapsed = p.started.elapsed();
    ctx.metrics.record(p.route, p.class, elapsed);
    if let Some(shape) = p.shape {
        ctx.shapes.record(shape, p.route, elapsed);
    }
    let mut st = lock(state);
    st.hooks.on_ready(status, elapsed);
    let wait = st.hooks.before_ready();
    Next { idle_end: st.draining && st.is_idle(), served_next: st.front_is_served(), wait }
}

/// Writes the cached answers at the front of the queue, each with a ReadyForQuery (cached
/// statements run outside transaction blocks only). True when the proxy is draining and the
/// session became idle.
async fn serve_front(w: &mut WriteHalf, state: &Mutex<State>, ctx: &Context, out: &mut BytesMut) -> Result<bool, SessionError> {
    loop {
        let p = {
            let mut st = lock(state);
            if !st.front_is_served() {
                return Ok(false);
            }
            st.pop(TxStatus::Idle)
        };
        let Some(mut p) = p else { return Ok(false) };
        let answer = p.served.take().unwrap_or_default();
        let notice = p.notice.take();
        let z = ready::frame(TxStatus::Idle);
        if answer.len() <= ASSEMBLE_LIMIT {
            out.clear();
            if let Some(n) = &notice {
                out.extend_from_slice(n);
            }
            out.extend_from_slice(&answer);
            out.extend_from_slice(&z);
            w.write_all(out).await.map_err(SessionError::ClientIo)?;
        } else {
            if let Some(n) = &notice {
                w.write_all(n).await.map_err(SessionError::ClientIo)?;
            }
            w.write_all(&answer).await.map_err(SessionError::ClientIo)?;
            w.write_all(&z).await.map_err(SessionError::ClientIo)?;
        }
        ctx.metrics.bytes_to_client.increment((answer.len() + z.len()) as u64);
        if finished(state, ctx, &p, TxStatus::Idle).idle_end {
            return Ok(true);
        }
    }
}
