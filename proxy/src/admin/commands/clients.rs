//! SHOW CLIENTS: one row per connected client.

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&["id", "user", "database", "addr", "tls", "state", "busy_seconds", "statements", "connected_seconds"]);
    for s in ctx.sessions.snapshot() {
        let state = match (s.tx(), s.busy_for()) {
            (_, Some(_)) => "active",
            ('T', None) => "idle in transaction",
            ('E', None) => "idle in failed transaction",
            _ => "idle",
        };
        let connected = s.connected_at.elapsed().map(|d| d.as_secs()).unwrap_or(0);
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
        ]);
    }
    rs
}
