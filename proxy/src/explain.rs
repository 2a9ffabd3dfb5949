//! `citus-proxy explain`: the route of one statement, computed by the same code the proxy runs
//! (metadata read from the coordinator named by `--upstream`, then the router).

use std::sync::Arc;

use citus_proxy_router::Router;

use crate::config::Config;
use crate::metadata::{Loader, MetadataError};
use crate::settings::parse_search_path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Loads the topology and explains `sql` with `params` (bound as text, like psql's `\bind`).
pub async fn explain(config: &Config, sql: &str, params: &[String], format: Format) -> Result<String, MetadataError> {
    let topology = Loader::from_config(config)?.load().await?;
    let router = Arc::new(Router::new(16));
    let search_path = parse_search_path(&config.routing.search_path);
    let sp: Vec<&str> = search_path.iter().map(String::as_str).collect();
    let decision = if params.is_empty() {
        router.route_query(sql, &topology, &sp)
    } else {
        let prepared = router.prepare(sql, &vec![0u32; params.len()]);
        let values: Vec<Option<&[u8]>> = params.iter().map(|p| Some(p.as_bytes())).collect();
        router.route_bound(&prepared, &values, &[], &topology, &sp)
    };
    Ok(match format {
        Format::Text => decision.explain_text(),
        Format::Json => serde_json::to_string_pretty(&decision.explain_json()).unwrap_or_default(),
    })
}
