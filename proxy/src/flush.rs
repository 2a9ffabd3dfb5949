//! `citus-proxy flush-cache`: empties the result cache of every instance. With `--admin-url` it
//! asks one running proxy's admin console (`FLUSH CACHE`, which also reaches every instance
//! sharing its Redis); otherwise it rotates the shared epoch in `cache.redis_url` itself, which
//! every instance hears on the invalidation channel.

use std::time::Duration;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(
        "name a proxy's admin console with --admin-url, or configure `cache.redis_url`: without Redis each instance's cache is its own"
    )]
    NothingToFlush,
    #[error("admin console {url}: {message}")]
    Admin { url: String, message: String },
    #[error("Redis: {0}")]
    Redis(String),
}

pub async fn flush(config: &Config, admin_url: Option<&str>) -> Result<String, FlushError> {
    if let Some(url) = admin_url {
        // The URL may carry the admin's password: it is shown masked, in errors and on success.
        let shown = crate::config::mask::mask_url(url);
        let admin = |message: String| FlushError::Admin { url: shown.clone(), message };
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| admin(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let result = client.simple_query("FLUSH CACHE").await.map_err(|e| admin(e.to_string()));
        drop(client);
        let _ = driver.await;
        result?;
        return Ok(format!("flushed through {shown}"));
    }
    let cc = config.cache.to_cache_config().map_err(FlushError::Redis)?;
    if cc.redis_url.is_none() {
        return Err(FlushError::NothingToFlush);
    }
    let cache = crate::caching::build(&cc).map_err(FlushError::Redis)?;
    if !cache.wait_ready(Duration::from_secs(5)).await {
        return Err(FlushError::Redis(format!("{} does not answer", crate::config::mask::mask_url(&cc.redis_url.unwrap_or_default()))));
    }
    cache.flush().await;
    if cache.stats().pending_invalidations > 0 {
        return Err(FlushError::Redis("the new epoch could not be written".into()));
    }
    Ok("flushed: every instance sharing this Redis drops its entries".into())
}
