//! SHOW SERVERS: with pooling, one row per pooled server connection (PgBouncer's columns where
//! they mean the same); with `pool.mode = off`, one coordinator connection per client session.

use super::super::result::{v, ResultSet};
use crate::config::PoolMode;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    if ctx.config.pool.mode == PoolMode::Off {
        let mut rs = ResultSet::new(&["client_id", "upstream", "user", "database", "tx_state"]);
        for s in ctx.sessions.snapshot() {
            rs.row(vec![v(s.id), v(ctx.connector.addr()), v(&s.user), v(&s.database), v(s.tx())]);
        }
        return rs;
    }
    let mut rs = ResultSet::new(&[
        "id",
        "user",
        "database",
        "state",
        "addr",
        "port",
        "connect_time",
        "state_seconds",
        "remote_pid",
        "client_id",
        "checkouts",
    ]);
    for s in ctx.pools.servers() {
        let (host, port) = s.addr.rsplit_once(':').unwrap_or((s.addr.as_str(), ""));
        rs.row(vec![
            v(s.id),
            v(&s.key.user),
            v(&s.key.database),
            v(s.state().as_str()),
            v(host.trim_start_matches('[').trim_end_matches(']')),
            v(port),
            v(humantime::format_rfc3339_seconds(s.connected_at)),
            v(format!("{:.3}", s.in_state_for().as_secs_f64())),
            Some(s.pid()).filter(|p| *p != 0).map(|p| p.to_string()),
            s.client().map(|c| c.to_string()),
            v(s.checkouts.load(std::sync::atomic::Ordering::Relaxed)),
        ]);
    }
    rs
}
