//! Before a connection idle for long goes to a client: is it still there? An empty query is the
//! cheapest statement PostgreSQL answers (EmptyQueryResponse, ReadyForQuery).

use std::time::Duration;

use super::conn::ServerConn;

pub async fn healthy(conn: &mut ServerConn, timeout: Duration) -> bool {
    // Anything left unread means the server spoke out of turn (an admin's termination notice):
    // not a connection to hand out.
    conn.buf.is_empty() && super::hidden::run(conn, "", timeout).await.is_ok()
}

/// Whether an idle connection has said nothing since it was given back: a server that closed it
/// (a restart, `pg_terminate_backend`) has sent its goodbye or end of file, which one read that
/// must not wait finds. Costs one non-blocking read.
pub fn quiet(conn: &mut ServerConn) -> bool {
    use tokio::io::AsyncRead;
    let mut probe = [0u8; 1];
    let mut rb = tokio::io::ReadBuf::new(&mut probe);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Ready means bytes out of turn, end of file, or an error: not a connection to hand out.
    std::pin::Pin::new(&mut conn.r).poll_read(&mut cx, &mut rb).is_pending()
}
