//! Statements the proxy runs on a server connection for itself (a health check, the reset
//! before reuse, the settings a client carries over): sent as one simple Query, answered up to
//! its ReadyForQuery, nothing of it reaches a client.

use std::time::Duration;

use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::ServerConn;
use crate::wire::frame::{total_len, HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum HiddenError {
    #[error("server connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("server connection closed")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed message from the server")]
    Malformed,
    /// The server refused the statement: its ErrorResponse body.
    #[error("{}", describe(.0))]
    Refused(Vec<u8>),
}

fn describe(body: &[u8]) -> String {
    let field = |c| crate::wire::error_response::field(body, c).map(String::from_utf8_lossy).unwrap_or_default();
    format!("{} ({})", field(b'M'), field(b'C'))
}

/// Runs `sql` and waits for its ReadyForQuery. Fails on any ErrorResponse; the connection is then
/// still in step (its ReadyForQuery was read) unless the error is Io/Closed/Timeout/Malformed.
pub async fn run(conn: &mut ServerConn, sql: &str, timeout: Duration) -> Result<(), HiddenError> {
    let mut q = Vec::with_capacity(HEADER_LEN + sql.len() + 1);
    q.push(b'Q');
    q.extend_from_slice(&((4 + sql.len() + 1) as i32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    let work = async {
        conn.w.write_all(&q).await?;
        let mut refused = None;
        loop {
            while let Some(header) = conn.buf.first_chunk::<HEADER_LEN>() {
                let total = total_len(header).ok_or(HiddenError::Malformed)?;
                if conn.buf.len() < total {
                    break;
                }
                let tag = header[0];
                if tag == b'E' && refused.is_none() {
                    refused = Some(conn.buf.get(HEADER_LEN..total).unwrap_or_default().to_vec());
                }
                conn.buf.advance(total);
                if tag == b'Z' {
                    return match refused {
                        Some(body) => Err(HiddenError::Refused(body)),
                        None => Ok(()),
                    };
                }
            }
            conn.buf.reserve(4096);
            if conn.r.read_buf(&mut conn.buf).await? == 0 {
                return Err(HiddenError::Closed);
            }
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| HiddenError::Timeout(timeout))?
}
