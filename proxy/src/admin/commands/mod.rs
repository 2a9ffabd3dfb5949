//! Console commands, one file each. Unknown commands get SQLSTATE 42601 with the list.

mod cache;
mod clients;
mod cluster;
mod config;
mod reload;
mod routes;
mod servers;
mod slo;
mod stats;

use crate::context::Context;
use crate::wire::error_response::{encode, Severity};

use super::result::ResultSet;

const HELP: &str =
    "SHOW STATS | SHOW CLIENTS | SHOW SERVERS | SHOW ROUTES | SHOW SLO | SHOW CLUSTER | SHOW CACHE | SHOW CONFIG | RELOAD | FLUSH CACHE";

/// Runs one console command, appending its messages (results or an error) to `out`.
pub async fn run(ctx: &Context, sql: &str, out: &mut Vec<u8>) {
    let words: Vec<String> = sql.trim_end_matches(';').split_whitespace().map(|w| w.to_ascii_uppercase()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let sets: Result<Vec<ResultSet>, String> = match words.as_slice() {
        [] => Ok(Vec::new()),
        ["SHOW", "STATS"] => Ok(vec![stats::show(ctx)]),
        ["SHOW", "CLIENTS"] => Ok(vec![clients::show(ctx)]),
        ["SHOW", "SERVERS"] => Ok(vec![servers::show(ctx)]),
        ["SHOW", "ROUTES"] => Ok(vec![routes::show(ctx)]),
        ["SHOW", "SLO"] => Ok(vec![slo::show(ctx)]),
        ["SHOW", "CLUSTER"] => Ok(cluster::show(ctx)),
        ["SHOW", "CACHE"] => Ok(vec![cache::show(ctx)]),
        ["SHOW", "CONFIG"] => Ok(vec![config::show(ctx)]),
        ["RELOAD"] => reload::run(ctx).await.map(|r| vec![r]),
        ["FLUSH", "CACHE"] | ["CACHE", "FLUSH"] => cache::flush(ctx).await.map(|r| vec![r]),
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
        Err(e) => out.extend_from_slice(&encode(Severity::Error, "XX000", &e, None)),
    }
}

/// Milliseconds with three decimals, for latency columns.
pub(super) fn ms(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}
