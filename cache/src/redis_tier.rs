//! The shared tier: one Redis server (through `ConnectionManager`, which reconnects by itself) or
//! a Redis Cluster (`ClusterConnection`, which follows MOVED/ASK), behind one enum.
//!
//! Every operation goes through `run`: the circuit breaker first (open: fail at once, no network),
//! then a hard per-operation timeout of a few milliseconds. Callers treat every error as a miss.
//! Commands are only ever single-key or single-hash, so they route in a cluster; reads that need
//! two keys send two commands concurrently (the multiplexed connection pipelines them anyway).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

use crate::breaker::Breaker;
use crate::config::CacheConfig;
use crate::entry::Entry;
use crate::error::CacheError;
use crate::generations::{new_epoch, Snapshot, EPOCH_FIELD};
use crate::key::Key;

/// Connection establishment runs in the background, so it may take longer than an operation.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipe: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) struct RedisTier {
    /// Set once connected (at once for a single server, whose manager connects lazily).
    conn: Arc<OnceLock<Conn>>,
    breaker: Breaker,
    timeout: Duration,
    prefix: String,
    nodes: Vec<String>,
    connector: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        if let Some(task) = &self.connector {
            task.abort();
        }
    }
}

impl RedisTier {
    /// Must run inside a tokio runtime (the connection is established by background tasks).
    pub fn new(config: &CacheConfig) -> Result<RedisTier, CacheError> {
        let nodes = config.redis_nodes();
        let conn = Arc::new(OnceLock::new());
        let mut connector = None;
        if config.is_cluster() {
            let client = ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(CONNECT_TIMEOUT)
                .retries(1)
                .build()?;
            let slot = conn.clone();
            let cooldown = config.breaker_cooldown;
            connector = Some(tokio::spawn(async move {
                loop {
                    match tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection()).await {
                        Ok(Ok(c)) => {
                            let _ = slot.set(Conn::Cluster(c));
                            return;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "cache: redis cluster not reachable yet"),
                        Err(_) => tracing::debug!("cache: redis cluster connect timed out"),
                    }
                    tokio::time::sleep(cooldown).await;
                }
            }));
        } else {
            let url = nodes.first().ok_or_else(|| CacheError::Config("cache.redis_url names no node".into()))?;
            let client = redis::Client::open(url.as_str())?;
            // Few, quick retries: the breaker decides when to try again, not the manager.
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(10))
                .set_max_delay(Duration::from_millis(200));
            let manager = ConnectionManager::new_lazy_with_config(client, cfg)?;
            // Warm the lazy connection up so the first statements do not pay for it.
            let mut warm = manager.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, redis::cmd("PING").query_async::<String>(&mut warm)).await;
            });
            let _ = conn.set(Conn::Single(manager));
        }
        Ok(RedisTier {
            conn,
            breaker: Breaker::new(config.breaker_failures, config.breaker_cooldown),
            timeout: config.redis_timeout,
            prefix: config.redis_prefix.clone(),
            nodes,
            connector,
        })
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn breaker_state(&self) -> &'static str {
        self.breaker.state_label()
    }

    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn gens_key(&self) -> String {
        format!("{}:gens", self.prefix)
    }

    fn entry_key(&self, key: &Key) -> String {
        format!("{}:e:{}", self.prefix, key.to_hex())
    }

    /// Breaker, then the operation under `limit`; the outcome feeds the breaker.
    async fn run<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(CacheError::BreakerOpen);
        }
        self.run_unguarded(limit, op).await
    }

    /// As `run` without asking the breaker first (its outcome still feeds it): for
    /// invalidations, which must be tried even while reads have given up on Redis.
    async fn run_unguarded<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.conn.get().cloned().ok_or(CacheError::NotConnected)?;
        match tokio::time::timeout(limit, op(conn)).await {
            Ok(Ok(v)) => {
                self.breaker.record_success();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.breaker.record_failure();
                Err(e.into())
            }
            Err(_) => {
                self.breaker.record_failure();
                Err(CacheError::Timeout(limit))
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, limit: Duration, cmd: &Cmd) -> Result<T, CacheError> {
        self.run(limit, |mut c| async move { cmd.query_async(&mut c).await }).await
    }

    pub async fn ping(&self, limit: Duration) -> Result<(), CacheError> {
        self.query::<String>(limit, &redis::cmd("PING")).await.map(|_| ())
    }

    pub async fn get_entry(&self, key: &Key) -> Result<Option<Entry>, CacheError> {
        let raw: Option<Vec<u8>> = self.query(self.timeout, redis::cmd("GET").arg(self.entry_key(key))).await?;
        raw.map(|v| Entry::decode(&v)).transpose()
    }

    /// Stores with Redis's own expiry set to the entry's remaining TTL.
    pub async fn set_entry(&self, key: &Key, entry: &Entry) -> Result<(), CacheError> {
        let ms = entry.remaining().as_millis() as u64;
        if ms == 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.entry_key(key)).arg(entry.encode()).arg("PX").arg(ms);
        self.query::<()>(self.timeout, &cmd).await
    }

    /// The current generations of `fields`. A missing epoch means Redis lost the hash (or never
    /// had it): a fresh random epoch is installed first (HSETNX, so concurrent instances agree).
    pub async fn fetch_gens(&self, fields: &[String]) -> Result<Snapshot, CacheError> {
        for _ in 0..2 {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(self.gens_key()).arg(EPOCH_FIELD).arg(fields);
            let values: Vec<Option<u64>> = self.query(self.timeout, &cmd).await?;
            if values.len() != fields.len() + 1 {
                return Err(CacheError::Corrupt("HMGET answered the wrong number of values"));
            }
            if let Some(epoch) = values[0] {
                let gens = fields.iter().cloned().zip(values[1..].iter().map(|v| v.unwrap_or(0))).collect();
                return Ok(Snapshot::new(epoch, gens));
            }
            let mut init = redis::cmd("HSETNX");
            init.arg(self.gens_key()).arg(EPOCH_FIELD).arg(new_epoch());
            self.query::<i64>(self.timeout, &init).await?;
        }
        Err(CacheError::Corrupt("no epoch after HSETNX"))
    }

    /// Increments `fields` (each HINCRBY is atomic; the pipeline targets one hash, so it routes
    /// in a cluster) and reads the epoch; returns the epoch (None if Redis has none, i.e. it just
    /// lost its data: the next read installs a new epoch anyway) and the new values.
    pub async fn bump_gens(&self, fields: &[String], limit: Duration) -> Result<(Option<u64>, Vec<(String, u64)>), CacheError> {
        let key = self.gens_key();
        let mut pipe = redis::pipe();
        for f in fields {
            pipe.cmd("HINCRBY").arg(&key).arg(f).arg(1);
        }
        pipe.cmd("HGET").arg(&key).arg(EPOCH_FIELD);
        let mut all: Vec<Value> = self.run_unguarded(limit, |mut c| async move { pipe.query_async(&mut c).await }).await?;
        let corrupt = |_| CacheError::Corrupt("HINCRBY/HGET answered a non-integer");
        let epoch = Option::<u64>::from_redis_value(all.pop().unwrap_or(Value::Nil)).map_err(corrupt)?;
        let values = all.iter().map(u64::from_redis_value_ref).collect::<Result<Vec<u64>, _>>().map_err(corrupt)?;
        if values.len() != fields.len() {
            return Err(CacheError::Corrupt("HINCRBY answered the wrong number of values"));
        }
        Ok((epoch, fields.iter().cloned().zip(values).collect()))
    }

    /// Installs a new epoch: every key derived before is unreachable on every instance.
    pub async fn rotate_epoch(&self, epoch: u64, limit: Duration) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.gens_key()).arg(EPOCH_FIELD).arg(epoch);
        self.query::<i64>(limit, &cmd).await.map(|_| ())
    }

    pub async fn publish(&self, message: &str) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(message);
        self.query::<i64>(self.timeout.max(Duration::from_millis(50)), &cmd).await.map(|_| ())
    }
}

