//! SHOW CLIENTS: one row per connected client. `wait` / `wait_us` (PgBouncer's split: whole
//! seconds, then the microseconds) is how long it has been waiting for a pooled server
//! connection; `pinned` says a transaction-mode client holds one for good.

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[
        "id",
        "user",
        "database",
        "addr",
        "tls",
        "state",
        "busy_seconds",
        "statements",
        "connected_seconds",
        "application_name",
        "wait",
        "wait_us",
        "pinned",
    ]);
    for s in ctx.sessions.snapshot() {
        let wait = s.waiting_for();
        let state = match (s.tx(), s.busy_for(), wait) {
            (_, _, Some(_)) => "waiting",
            (_, Some(_), None) => "active",
            ('T', None, None) => "idle in transaction",
            ('E', None, None) => "idle in failed transaction",
            _ => "idle",
        };
        let connected = s.connected_at.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        let wait = wait.unwrap_or_default();
        rs.row(vec![
            v(s.id),
            v(&s.user),
            v(&s.database),
            v(s.peer),
            v(s.tls),
            v(state),
            s.busy_for().map(|d| format!("{:.3}", d.as_secs_f64())),
            v(s.statements.load(std::sync::atomic::Ordering::Relaxed)),
            v(connected),
            v(&s.application_name),
            v(wait.as_secs()),
            v(wait.subsec_micros()),
            v(s.pinned()),
        ]);
    }
    rs
}
