//! Before a connection idle for long goes to a client: is it still there? An empty query is the
//! cheapest statement PostgreSQL answers (EmptyQueryResponse, ReadyForQuery).

use std::time::Duration;

use super::conn::ServerConn;

pub async fn healthy(conn: &mut ServerConn, timeout: Duration) -> bool {
    // Anything left unread means the server spoke out of turn (an admin's termination notice):
    // not a connection to hand out.
    conn.buf.is_empty() && super::hidden::run(conn, "", timeout).await.is_ok()
}
