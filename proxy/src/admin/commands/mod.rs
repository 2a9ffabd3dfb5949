//! Console commands, one file each. Unknown commands get SQLSTATE 42601 with the list.

mod cache;
mod clients;
mod cluster;
mod config;
mod control;
mod databases;
mod pools;
mod reload;
mod routes;
mod servers;
mod slo;
mod stats;
mod version;

use crate::config::PoolMode;
use crate::context::Context;
use crate::wire::error_response::{encode, Severity};

use super::result::ResultSet;

const HELP: &str = "SHOW STATS | SHOW CLIENTS | SHOW SERVERS | SHOW POOLS | SHOW DATABASES | SHOW ROUTES | SHOW SLO | SHOW CLUSTER | \
     SHOW CACHE | SHOW CONFIG | SHOW VERSION | RELOAD | FLUSH CACHE | PAUSE | RESUME | KILL [db] | RECONNECT [db] | SHUTDOWN";

/// A command that failed: the ErrorResponse's SQLSTATE and message.
pub struct CommandError {
    code: &'static str,
    message: String,
}

impl CommandError {
    pub fn new(code: &'static str, message: String) -> CommandError {
        CommandError { code, message }
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> CommandError {
        CommandError { code: "XX000", message }
    }
}

/// Runs one console command, appending its messages (results or an error) to `out`.
pub async fn run(ctx: &Context, sql: &str, out: &mut Vec<u8>) {
    let trimmed = sql.trim_end_matches(';');
    // Keywords match in any case; a database name keeps its own (double quotes allowed).
    let original: Vec<&str> = trimmed.split_whitespace().collect();
    let words: Vec<String> = original.iter().map(|w| w.to_ascii_uppercase()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let db = original.get(1).map(|d| d.trim_matches('"'));
    let sets: Result<Vec<ResultSet>, CommandError> = match words.as_slice() {
        [] => Ok(Vec::new()),
        ["SHOW", "STATS"] => Ok(vec![stats::show(ctx)]),
        ["SHOW", "CLIENTS"] => Ok(vec![clients::show(ctx)]),
        ["SHOW", "SERVERS"] => Ok(vec![servers::show(ctx)]),
        ["SHOW", "POOLS"] => Ok(vec![pools::show(ctx)]),
        ["SHOW", "DATABASES"] => Ok(vec![databases::show(ctx)]),
        ["SHOW", "ROUTES"] => Ok(vec![routes::show(ctx)]),
        ["SHOW", "SLO"] => Ok(vec![slo::show(ctx)]),
        ["SHOW", "CLUSTER"] => Ok(cluster::show(ctx)),
        ["SHOW", "CACHE"] => Ok(vec![cache::show(ctx)]),
        ["SHOW", "CONFIG"] => Ok(vec![config::show(ctx)]),
        ["SHOW", "VERSION"] => Ok(vec![version::show()]),
        ["RELOAD"] => reload::run(ctx).await.map(|r| vec![r]).map_err(CommandError::from),
        ["FLUSH", "CACHE"] | ["CACHE", "FLUSH"] => cache::flush(ctx).await.map(|r| vec![r]).map_err(CommandError::from),
        ["PAUSE"] => control::pause(ctx).await.map(|r| vec![r]),
        ["RESUME"] => control::resume(ctx).map(|r| vec![r]),
        ["PAUSE" | "RESUME", _] => Err(CommandError::new("0A000", "PAUSE and RESUME act on every pool: give no database".to_string())),
        ["KILL"] => control::kill(ctx, None).await.map(|r| vec![r]),
        ["KILL", _] => control::kill(ctx, db).await.map(|r| vec![r]),
        ["RECONNECT"] => control::reconnect(ctx, None).await.map(|r| vec![r]),
        ["RECONNECT", _] => control::reconnect(ctx, db).await.map(|r| vec![r]),
        ["SHUTDOWN"] => control::shutdown(ctx).map(|r| vec![r]),
        _ => {
            out.extend_from_slice(&encode(
                Severity::Error,
                "42601",
                &format!("unknown admin command: {sql}"),
                Some(&format!("commands: {HELP}")),
            ));
            return;
        }
    };
    match sets {
        Ok(sets) if sets.is_empty() => out.extend_from_slice(&crate::wire::frame::build(b'I', &[])),
        Ok(sets) => {
            for s in sets {
                s.encode(out);
            }
        }
        Err(e) => out.extend_from_slice(&encode(Severity::Error, e.code, &e.message, None)),
    }
}

/// Milliseconds with three decimals, for latency columns.
pub(super) fn ms(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// `pool.mode` as configured.
pub(super) fn mode_name(mode: PoolMode) -> &'static str {
    match mode {
        PoolMode::Off => "off",
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
    }
}
