//! SHOW DATABASES: one row per database clients use (from the pools, or from the sessions with
//! `pool.mode = off`), with the coordinator it is served by and the limits in force. The proxy
//! does not rename databases: `name` and `database` are the same.

use std::collections::BTreeSet;

use super::super::result::{v, ResultSet};
use super::mode_name;
use crate::config::PoolMode;
use crate::context::Context;

pub fn show(ctx: &Context) -> ResultSet {
    let mut rs = ResultSet::new(&[
        "name",
        "host",
        "port",
        "database",
        "pool_size",
        "min_pool_size",
        "pool_mode",
        "max_connections",
        "current_connections",
        "paused",
    ]);
    let live = ctx.live();
    let mode = ctx.config.pool.mode;
    let addr = ctx.connector.addr();
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let sessions = ctx.sessions.snapshot();
    let servers = ctx.pools.servers();
    let names: BTreeSet<String> = if mode == PoolMode::Off {
        sessions.iter().map(|s| s.database.clone()).collect()
    } else {
        ctx.pools.all().iter().map(|p| p.key.database.clone()).collect()
    };
    for db in names {
        let current = if mode == PoolMode::Off {
            sessions.iter().filter(|s| s.database == db).count()
        } else {
            servers.iter().filter(|s| s.key.database == db).count()
        };
        let (size, min) = if mode == PoolMode::Off { (None, None) } else { (v(live.pool.size), v(live.pool.min_size)) };
        rs.row(vec![
            v(&db),
            v(host),
            v(port),
            v(&db),
            size,
            min,
            v(mode_name(mode)),
            // 0 = no cap, as PgBouncer's max_db_connections.
            v(live.pool.max_db_connections),
            v(current),
            v(u8::from(ctx.pools.is_paused())),
        ]);
    }
    rs
}
