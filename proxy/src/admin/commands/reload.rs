//! RELOAD: re-reads the catalog now, and re-reads and validates the configuration, reporting
//! which keys changed (they take effect at the next start; a bad file is reported, not applied).

use super::super::result::{v, ResultSet};
use crate::context::Context;

pub async fn run(ctx: &Context) -> Result<ResultSet, String> {
    let mut rs = ResultSet::new(&["item", "result"]).tagged("RELOAD");
    match &ctx.loader {
        Some(loader) => match ctx.metadata.refresh(loader, &ctx.metrics).await {
            Ok(()) => {
                let g = ctx.metadata.topology();
                let (t, n) = g.as_ref().map(|t| (t.tables().len(), t.nodes().len())).unwrap_or((0, 0));
                rs.row(vec![v("metadata"), v(format!("reloaded: {t} tables, {n} nodes"))]);
            }
            Err(e) => rs.row(vec![v("metadata"), v(format!("failed, keeping the last snapshot: {e}"))]),
        },
        None => rs.row(vec![v("metadata"), v("routing is off (routing.enabled = false)")]),
    }
    let src = &ctx.source;
    match crate::config::load(src.file.as_deref(), &src.overrides, |n| std::env::var(n).ok()) {
        Ok(fresh) => {
            let changed: Vec<&str> = fresh
                .values
                .iter()
                .filter(|(k, val)| ctx.config.values.iter().find(|(k2, _)| k2 == k).map(|(_, v2)| v2) != Some(val))
                .map(|(k, _)| k.as_str())
                .collect();
            let msg = if changed.is_empty() {
                "valid, unchanged".to_string()
            } else {
                format!("valid; changed (restart to apply): {}", changed.join(", "))
            };
            rs.row(vec![v("config"), v(msg)]);
        }
        Err(e) => rs.row(vec![v("config"), v(format!("invalid, not applied: {e}"))]),
    }
    Ok(rs)
}
