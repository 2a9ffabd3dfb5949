//! The two directions of an established session. Each reads whatever arrived, walks the frame
//! headers in place, looks inside only the few frames it must (Query, Parse, Bind one way;
//! ReadyForQuery and ErrorResponse the other), and forwards the bytes as read, in one write per
//! read. Frames it does not inspect are never buffered whole, so a 100 MB result streams
//! through a fixed buffer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::frames::{next_header, FrameReader};
use super::state::{lock, Pending, State};
use crate::context::Context;
use crate::error::SessionError;
use crate::hooks::{StatementHooks, StatementNote};
use crate::net::stream::{ReadHalf, WriteHalf};
use crate::sessions::SessionInfo;
use crate::shutdown::{reached, Phase};
use crate::wire::bind::BindView;
use crate::wire::error_response::is_fatal;
use crate::wire::frame::{is_frontend_tag, HEADER_LEN};
use crate::wire::parse::ParseView;
use crate::wire::query;
use crate::wire::ready::TxStatus;

/// Frames up to this size are inspected whole; bigger Query/Parse/Bind frames (bulk literals)
/// are streamed through unanalysed rather than buffered.
const INSPECT_LIMIT: usize = 1 << 20;
/// Read at least this much spare room before each read.
const READ_CHUNK: usize = 16 * 1024;
/// While a statement is outstanding, how often the idle timeout re-checks whether it finished.
const BUSY_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

pub struct Halves {
    pub client: FrameReader<ReadHalf>,
    pub client_w: WriteHalf,
    pub upstream: FrameReader<ReadHalf>,
    pub upstream_w: WriteHalf,
}

impl Halves {
    pub fn new(client_r: ReadHalf, client_w: WriteHalf, upstream_r: ReadHalf, upstream_w: WriteHalf, _ctx: &Arc<Context>) -> Self {
        Halves { client: FrameReader::new(client_r), client_w, upstream: FrameReader::new(upstream_r), upstream_w }
    }
}

/// How an established session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed its socket.
    ClientGone,
    /// The coordinator closed after telling the client why (a FATAL error).
    UpstreamClosed,
    /// The proxy is draining and the session reached an idle point.
    Drained,
    /// The proxy closed every connection.
    Closed,
}

pub async fn run(
    h: Halves,
    hooks: Box<dyn StatementHooks>,
    info: Arc<SessionInfo>,
    ctx: &Arc<Context>,
    mut phase: watch::Receiver<Phase>,
) -> Result<End, SessionError> {
    let state = State::new(hooks, info);
    let Halves { client, mut client_w, upstream, mut upstream_w } = h;
    let result = {
        let c2s = client_to_upstream(client, &mut upstream_w, &state, ctx);
        let s2c = upstream_to_client(upstream, &mut client_w, &state, ctx);
        tokio::pin!(c2s, s2c);
        tokio::select! {
            r = &mut c2s => r,
            r = &mut s2c => r,
            _ = reached(&mut phase, Phase::Draining) => {
                let idle = {
                    let mut st = lock(&state);
                    st.draining = true;
                    st.is_idle()
                };
                if idle {
                    Ok(End::Drained)
                } else {
                    tokio::select! {
                        r = &mut c2s => r,
                        r = &mut s2c => r,
                        _ = reached(&mut phase, Phase::Closing) => Ok(End::Closed),
                    }
                }
            }
        }
    };
    let farewell = match &result {
        Err(e) => e.to_client(),
        Ok(End::Drained) | Ok(End::Closed) => SessionError::Shutdown.to_client(),
        Ok(_) => None,
    };
    if let Some(msg) = farewell {
        let _ = client_w.write_all(&msg).await;
    }
    if matches!(result, Ok(End::Drained) | Ok(End::Closed) | Err(_)) {
        // Tell the coordinator we are leaving rather than vanishing.
        let _ = upstream_w.write_all(&[b'X', 0, 0, 0, 4]).await;
    }
    let _ = client_w.shutdown().await;
    let _ = upstream_w.shutdown().await;
    result
}

fn protocol(msg: String) -> SessionError {
    SessionError::Protocol(msg)
}

async fn client_to_upstream(
    reader: FrameReader<ReadHalf>,
    w: &mut WriteHalf,
    state: &Mutex<State>,
    ctx: &Arc<Context>,
) -> Result<End, SessionError> {
    let FrameReader { inner: mut r, mut buf } = reader;
    let max = ctx.config.limits.max_message_size as usize + 1;
    let idle_timeout = ctx.config.limits.idle_timeout;
    // Bytes of a frame we forward without looking inside, still to come.
    let mut pass: usize = 0;
    // First message of the current extended-protocol batch (timing runs to its ReadyForQuery).
    let mut batch_start: Option<Instant> = None;
    // Syncs since the last Execute: if that Execute started a COPY FROM, PostgreSQL ignores them.
    let mut syncs_after_execute: usize = 0;
    loop {
        let mut pos = 0;
        let mut need = 0;
        let mut terminate = false;
        while !terminate {
            let Some((tag, total)) = next_header(&buf, &mut pos, &mut pass) else { break };
            let total = total.ok_or_else(|| protocol("invalid message length".into()))?;
            if !is_frontend_tag(tag) || tag == b'p' {
                return Err(protocol(format!("invalid frontend message type {tag}")));
            }
            if total > max {
                return Err(protocol(format!(
                    "message of {total} bytes exceeds limits.max_message_size ({})",
                    max - 1
                )));
            }
            if !matches!(tag, b'S' | b'H' | b'd' | b'c' | b'f') {
                syncs_after_execute = 0;
            }
            let inspect = matches!(tag, b'Q' | b'P' | b'B') && total <= INSPECT_LIMIT;
            if inspect {
                if buf.len() - pos < total {
                    need = total;
                    break;
                }
                let body = &buf[pos + HEADER_LEN..pos + total];
                let mut st = lock(state);
                match tag {
                    b'Q' => {
                        let sql = query::sql(body)?;
                        let note = st.hooks.on_query(sql);
                        st.push(Pending::new(Instant::now(), note));
                    }
                    b'P' => {
                        batch_start.get_or_insert_with(Instant::now);
                        let parse = ParseView::decode(body)?;
                        st.hooks.on_parse(&parse);
                    }
                    _ => {
                        batch_start.get_or_insert_with(Instant::now);
                        let bind = BindView::decode(body)?;
                        st.hooks.on_bind(&bind);
                    }
                }
                pos += total;
                continue;
            }
            match tag {
                b'Q' | b'F' => lock(state).push(Pending::new(Instant::now(), StatementNote::default())),
                b'S' => {
                    let started = batch_start.take().unwrap_or_else(Instant::now);
                    let mut st = lock(state);
                    let note = st.hooks.on_sync();
                    st.push(Pending::new(started, note));
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
                b'X' => terminate = true,
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => {
                    batch_start.get_or_insert_with(Instant::now);
                }
                _ => {}
            }
            pass = total;
        }
        if pos > 0 {
            w.write_all(&buf[..pos]).await.map_err(SessionError::UpstreamIo)?;
            ctx.metrics.bytes_to_upstream.increment(pos as u64);
            buf.advance(pos);
        }
        if terminate {
            return Ok(End::ClientTerminated);
        }
        buf.reserve(need.saturating_sub(buf.len()).max(READ_CHUNK));
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

async fn upstream_to_client(
    reader: FrameReader<ReadHalf>,
    w: &mut WriteHalf,
    state: &Mutex<State>,
    ctx: &Arc<Context>,
) -> Result<End, SessionError> {
    let addr = ctx.connector.addr();
    let metrics = &ctx.metrics;
    let FrameReader { inner: mut r, mut buf } = reader;
    let mut pass: usize = 0;
    let mut last_was_fatal = false;
    // True until the first frame answering the oldest outstanding statement (where a hook's
    // notice goes).
    let mut at_statement_start = true;
    loop {
        let mut pos = 0;
        let mut out_from = 0;
        let mut need = 0;
        let mut drained = false;
        while let Some((tag, total)) = next_header(&buf, &mut pos, &mut pass) {
            let total = total.ok_or_else(|| SessionError::UpstreamLost(format!("{addr} (invalid message length)")))?;
            if at_statement_start {
                let notice = {
                    let mut st = lock(state);
                    match st.pending.front_mut() {
                        Some(p) => {
                            at_statement_start = false;
                            p.notice.take()
                        }
                        None => None,
                    }
                };
                if let Some(n) = notice {
                    w.write_all(&buf[out_from..pos]).await.map_err(SessionError::ClientIo)?;
                    w.write_all(&n).await.map_err(SessionError::ClientIo)?;
                    out_from = pos;
                }
            }
            if tag == b'G' {
                lock(state).copy_in = true;
            }
            if matches!(tag, b'Z' | b'E') && total <= INSPECT_LIMIT {
                if buf.len() - pos < total {
                    need = total;
                    break;
                }
                let body = &buf[pos + HEADER_LEN..pos + total];
                let mut st = lock(state);
                if tag == b'Z' {
                    let status = TxStatus::from_body(body)
                        .ok_or_else(|| SessionError::UpstreamLost(format!("{addr} (malformed ReadyForQuery)")))?;
                    if let Some(p) = st.pop(status) {
                        let elapsed = p.started.elapsed();
                        metrics.record(p.route, p.class, elapsed);
                        if let Some(shape) = p.shape {
                            ctx.shapes.record(shape, p.route, elapsed);
                        }
                        st.hooks.on_ready(status, elapsed);
                    }
                    at_statement_start = true;
                    pos += total;
                    if st.draining && st.is_idle() {
                        drained = true;
                        break;
                    }
                } else {
                    st.hooks.on_backend_error(body);
                    if let Some(code) = crate::wire::error_response::sqlstate(body) {
                        metrics.backend_error(code);
                    }
                    last_was_fatal = is_fatal(body);
                    pos += total;
                }
                continue;
            }
            pass = total;
        }
        if pos > out_from {
            w.write_all(&buf[out_from..pos]).await.map_err(SessionError::ClientIo)?;
        }
        metrics.bytes_to_client.increment(pos as u64);
        buf.advance(pos);
        if drained {
            return Ok(End::Drained);
        }
        buf.reserve(need.saturating_sub(buf.len()).max(READ_CHUNK));
        let n = r.read_buf(&mut buf).await.map_err(SessionError::UpstreamIo)?;
        if n == 0 {
            return if last_was_fatal { Ok(End::UpstreamClosed) } else { Err(SessionError::UpstreamLost(addr.to_string())) };
        }
    }
}
