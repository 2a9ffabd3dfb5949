//! The commands that act on clients and pools, as PgBouncer's: PAUSE / RESUME (every pool),
//! KILL [db], RECONNECT [db], SHUTDOWN. Each answers with its command tag only.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::super::result::ResultSet;
use super::CommandError;
use crate::config::PoolMode;
use crate::context::Context;

fn pooled(ctx: &Context, what: &str) -> Result<(), CommandError> {
    if ctx.config.pool.mode == PoolMode::Off {
        return Err(CommandError::new("0A000", format!("{what}: nothing is pooled on this proxy (pool.mode = off)")));
    }
    Ok(())
}

/// PAUSE: new transactions wait for RESUME (no error, only delay); returns once no server
/// connection is checked out, or fails after `shutdown.timeout` with the pools still paused.
pub async fn pause(ctx: &Context) -> Result<ResultSet, CommandError> {
    pooled(ctx, "PAUSE")?;
    let timeout = ctx.config.shutdown.timeout;
    info!(?timeout, "PAUSE: waiting for checked-out server connections");
    if ctx.pools.pause(timeout).await {
        info!("PAUSE: done, no server connection in use");
        return Ok(ResultSet::command("PAUSE"));
    }
    let busy: u32 = ctx.pools.all().iter().map(|p| p.snapshot().sv_active).sum();
    warn!(busy, "PAUSE: timed out");
    Err(CommandError::new(
        "57014",
        format!(
            "PAUSE: {busy} server connection(s) still in use after {timeout:?} (shutdown.timeout); \
             the pools stay paused, RESUME to let clients go on"
        ),
    ))
}

pub fn resume(ctx: &Context) -> Result<ResultSet, CommandError> {
    pooled(ctx, "RESUME")?;
    ctx.pools.resume();
    info!("RESUME");
    Ok(ResultSet::command("RESUME"))
}

/// The databases clients use now (connected sessions and pools).
fn known(ctx: &Context) -> HashSet<String> {
    let mut dbs: HashSet<String> = ctx.sessions.snapshot().iter().map(|s| s.database.clone()).collect();
    dbs.extend(ctx.pools.all().iter().map(|p| p.key.database.clone()));
    dbs
}

fn check_db(ctx: &Context, db: Option<&str>) -> Result<(), CommandError> {
    match db {
        Some(d) if d == ctx.config.admin.database => {
            Err(CommandError::new("42809", format!("cannot use the admin console's database: {d}")))
        }
        Some(d) if !known(ctx).contains(d) => Err(CommandError::new("3D000", format!("no client or pool uses database \"{d}\""))),
        _ => Ok(()),
    }
}

/// KILL [db]: every client of the database (or of all) is disconnected with SQLSTATE 57P01
/// and its server connections are closed (idle ones now, busy ones as their clients end).
/// Returns once those clients are gone (bounded by `shutdown.timeout`).
pub async fn kill(ctx: &Context, db: Option<&str>) -> Result<ResultSet, CommandError> {
    check_db(ctx, db)?;
    let matches = |d: &str| db.is_none_or(|x| x == d);
    // Connections opened before this point are not reused, whoever gives them back.
    let closed = ctx.pools.reconnect_where(|k| matches(&k.database)).await;
    let victims: Vec<_> = ctx.sessions.snapshot().into_iter().filter(|s| matches(&s.database)).collect();
    for s in &victims {
        s.kill();
    }
    info!(database = db.unwrap_or("*"), clients = victims.len(), idle_servers_closed = closed, "KILL");
    let ids: HashSet<u64> = victims.iter().map(|s| s.id).collect();
    let until = Instant::now() + ctx.config.shutdown.timeout;
    while ctx.sessions.snapshot().iter().any(|s| ids.contains(&s.id)) {
        if Instant::now() >= until {
            // They were told to end; a session stuck writing to a client ends with its socket.
            warn!("KILL: some clients had not ended within shutdown.timeout");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(ResultSet::command("KILL"))
}

/// RECONNECT [db]: idle server connections are closed now, busy ones when given back; new
/// ones are opened as clients need them.
pub async fn reconnect(ctx: &Context, db: Option<&str>) -> Result<ResultSet, CommandError> {
    pooled(ctx, "RECONNECT")?;
    check_db(ctx, db)?;
    let closed = ctx.pools.reconnect_where(|k| db.is_none_or(|d| d == k.database)).await;
    info!(database = db.unwrap_or("*"), idle_servers_closed = closed, "RECONNECT");
    Ok(ResultSet::command("RECONNECT"))
}

/// SHUTDOWN: as SIGTERM, the proxy drains (no new clients, transactions finish up to
/// `shutdown.timeout`) and exits. This console session ends too.
pub fn shutdown(ctx: &Context) -> Result<ResultSet, CommandError> {
    let Some(sd) = ctx.shutdown.get() else {
        return Err(CommandError::new("55000", "SHUTDOWN: this proxy was not started by server::run".to_string()));
    };
    info!("SHUTDOWN on the admin console: draining");
    sd.drain();
    Ok(ResultSet::command("SHUTDOWN"))
}
