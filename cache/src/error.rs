//! Errors of the cache. None of them ever reaches a client: every Redis failure is turned into a
//! miss or a bypass by the facade; only configuration errors surface, at start-up.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The configuration is unusable (bad URL, zero limits, a rule with neither table nor shape…).
    #[error("invalid cache configuration: {0}")]
    Config(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open, so Redis was not even asked.
    #[error("redis circuit breaker is open")]
    BreakerOpen,
    /// The cluster connection is still being established in the background.
    #[error("redis is not connected yet")]
    NotConnected,
    /// A value in Redis does not decode (another version, or a foreign writer under our prefix).
    #[error("malformed cache value in redis: {0}")]
    Corrupt(&'static str),
}
