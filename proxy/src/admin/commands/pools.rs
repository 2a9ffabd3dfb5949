//! SHOW POOLS: one row per pool (user and database, and with shard-local routing each node's
//! pool of them), PgBouncer's columns and the server (`node`). Waiting clients are
//! counted from the sessions themselves, so a client held by PAUSE or by a cap counts as
//! waiting as much as one queued for a busy pool. With `pool.mode = off` each connected
//! (database, user) gets a row whose clients each hold their own coordinator connection.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::result::{v, ResultSet};
use super::mode_name;
use crate::config::PoolMode;
use crate::context::Context;
use crate::pool::ServerState;

const COLUMNS: &[&str] = &[
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_used",
    "sv_login",
    "maxwait",
    "maxwait_us",
    "pool_mode",
    "node",
];

/// Waiting clients and the longest wait per (database, user).
fn waiting(ctx: &Context) -> BTreeMap<(String, String), (u32, Duration)> {
    let mut out: BTreeMap<(String, String), (u32, Duration)> = BTreeMap::new();
    for s in ctx.sessions.snapshot() {
        if let Some(w) = s.waiting_for() {
            let e = out.entry((s.database.clone(), s.user.clone())).or_default();
            e.0 += 1;
            e.1 = e.1.max(w);
        }
    }
    out
}

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(COLUMNS);
    let mode = ctx.config.pool.mode;
    if mode == PoolMode::Off {
        let mut per: BTreeMap<(String, String), u32> = BTreeMap::new();
        for s in ctx.sessions.snapshot() {
            *per.entry((s.database.clone(), s.user.clone())).or_default() += 1;
        }
        for ((db, user), n) in per {
            rs.row(vec![v(db), v(user), v(n), v(0), v(n), v(0), v(0), v(0), v(0), v(0), v(mode_name(mode)), v("coordinator")]);
        }
        return rs;
    }
    let waits = waiting(ctx);
    let check_delay = ctx.live().pool.server_check_delay;
    let servers = ctx.pools.servers();
    for pool in ctx.pools.all() {
        let s = pool.snapshot();
        // Clients wait in their coordinator pool's row; a node pool's row counts connections only.
        let on_coordinator = s.key.target == crate::pool::Target::Coordinator;
        let (cl_waiting, maxwait) =
            waits.get(&(s.key.database.clone(), s.key.user.clone())).copied().filter(|_| on_coordinator).unwrap_or_default();
        // Idle connections past pool.server_check_delay are checked before reuse: PgBouncer's sv_used.
        let (mut sv_idle, mut sv_used) = (0u32, 0u32);
        for sv in servers.iter().filter(|sv| sv.key == s.key && sv.state() == ServerState::Idle) {
            if sv.in_state_for() >= check_delay {
                sv_used += 1;
            } else {
                sv_idle += 1;
            }
        }
        rs.row(vec![
            v(&s.key.database),
            v(&s.key.user),
            v(s.clients.saturating_sub(cl_waiting)),
            v(cl_waiting),
            v(s.sv_active),
            v(sv_idle),
            v(sv_used),
            v(s.sv_login),
            v(maxwait.as_secs()),
            v(maxwait.subsec_micros()),
            v(mode_name(mode)),
            v(s.key.target.label()),
        ]);
    }
    rs
}
